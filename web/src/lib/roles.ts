// Roles as words, and what each role may do in the dashboard. The API enforces the same
// rules (controlplane/internal/auth/authz.go); the dashboard only hides what would fail.
import { Role } from "../gen/skypanel/organization/v1/organization_pb";
import { InvitationState } from "../gen/skypanel/organization/v1/invitation_pb";

export const roleLabel: Record<Role, string> = {
  [Role.UNSPECIFIED]: "No role",
  [Role.VIEWER]: "Viewer",
  [Role.MEMBER]: "Member",
  [Role.ADMIN]: "Admin",
  [Role.OWNER]: "Owner",
};

export const roleDescription: Record<Role, string> = {
  [Role.UNSPECIFIED]: "",
  [Role.VIEWER]: "Sees everything, changes nothing.",
  [Role.MEMBER]: "Deploys and operates apps.",
  [Role.ADMIN]: "Also manages members, invitations and API tokens.",
  [Role.OWNER]: "Also renames, deletes and transfers the organization.",
};

/** assignableRoles are the roles that can be given by invitation, role change or token. */
export const assignableRoles = [Role.VIEWER, Role.MEMBER, Role.ADMIN] as const;

export const can = {
  manageMembers: (r: Role) => r >= Role.ADMIN,
  manageTokens: (r: Role) => r >= Role.ADMIN,
  rename: (r: Role) => r >= Role.ADMIN,
  deleteOrg: (r: Role) => r === Role.OWNER,
  transfer: (r: Role) => r === Role.OWNER,
  leave: (r: Role) => r !== Role.OWNER && r !== Role.UNSPECIFIED,
};

export const invitationStateLabel: Record<InvitationState, string> = {
  [InvitationState.UNSPECIFIED]: "Unknown",
  [InvitationState.PENDING]: "Pending",
  [InvitationState.ACCEPTED]: "Accepted",
  [InvitationState.DECLINED]: "Declined",
  [InvitationState.REVOKED]: "Revoked",
  [InvitationState.EXPIRED]: "Expired",
};
