// Members and invitations: who is in the organization with which role, and who was asked to join.
import { createClient } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import * as M from "@radix-ui/react-dropdown-menu";
import { ChevronRight, Crown, LogOut, MailPlus, MoreHorizontal, UserMinus, Users } from "lucide-react";
import { useState } from "react";
import { useLocation } from "wouter";
import { Confirm } from "../../components/dialog";
import { RoleSelect } from "../../components/select";
import { toast } from "../../components/toast";
import { Avatar, Badge, Banner, Button, Card, CardHeader, EmptyState, ErrorState, ListRow, PageHeader, SkeletonRows } from "../../components/ui";
import { InvitationService, InvitationState, type Invitation } from "../../gen/skypanel/organization/v1/invitation_pb";
import { OrganizationService, Role, type Member } from "../../gen/skypanel/organization/v1/organization_pb";
import { invalidate, transport, useUser } from "../../lib/api";
import { formatDate, formatRelative } from "../../lib/format";
import { useOrg } from "../../lib/org";
import { can, invitationStateLabel, roleLabel } from "../../lib/roles";
import { InviteDialog } from "./InviteDialog";

const orgs = createClient(OrganizationService, transport);
const invitations = createClient(InvitationService, transport);

const menuItem =
  "flex cursor-default items-center gap-2 rounded-md px-2 py-1.5 text-sm outline-none select-none data-[highlighted]:bg-subtle data-[disabled]:opacity-50";

function MemberActions({ m }: { m: Member }) {
  const org = useOrg();
  const [, navigate] = useLocation();
  const [confirm, setConfirm] = useState<"remove" | "transfer" | null>(null);
  const who = m.displayName || m.email;

  async function remove() {
    try {
      await orgs.removeMember({ organizationId: org.id, userId: m.userId });
      await invalidate(OrganizationService.method.listMembers, OrganizationService.method.listOrganizations);
      toast.success(`${who} was removed`);
    } catch (err) {
      toast.error(`Couldn't remove ${who}`, err);
      throw err;
    }
  }
  async function transfer() {
    try {
      await orgs.transferOwnership({ organizationId: org.id, userId: m.userId });
      await invalidate(OrganizationService.method.listMembers, OrganizationService.method.listOrganizations);
      toast.success(`${who} now owns ${org.name}`, "You are an admin now.");
      navigate(`/o/${org.slug}/members`);
    } catch (err) {
      toast.error("Couldn't transfer ownership", err);
      throw err;
    }
  }

  return (
    <>
      <M.Root>
        <M.Trigger aria-label={`Actions for ${who}`} className="rounded-md p-1.5 text-muted hover:bg-subtle hover:text-fg">
          <MoreHorizontal className="size-4" aria-hidden />
        </M.Trigger>
        <M.Portal>
          <M.Content align="end" sideOffset={4} className="z-50 min-w-48 rounded-lg border border-line bg-surface p-1 shadow-lg">
            {can.transfer(org.role) && (
              <M.Item className={menuItem} onSelect={() => setConfirm("transfer")}>
                <Crown className="size-4 text-muted" aria-hidden /> Make owner
              </M.Item>
            )}
            <M.Item className={menuItem + " text-danger"} onSelect={() => setConfirm("remove")}>
              <UserMinus className="size-4" aria-hidden /> Remove from organization
            </M.Item>
          </M.Content>
        </M.Portal>
      </M.Root>
      <Confirm
        open={confirm === "remove"}
        onOpenChange={(o) => !o && setConfirm(null)}
        title={`Remove ${who}?`}
        description={`${m.email} loses access to ${org.name} at once, and their API tokens for it stop working. You can invite them again later.`}
        confirmLabel="Remove member"
        onConfirm={remove}
      />
      <Confirm
        open={confirm === "transfer"}
        onOpenChange={(o) => !o && setConfirm(null)}
        title={`Make ${who} the owner?`}
        description={`${m.email} becomes the owner of ${org.name}, and you become an admin. Only the new owner can undo this.`}
        confirmLabel="Transfer ownership"
        onConfirm={transfer}
      />
    </>
  );
}

function LeaveButton() {
  const org = useOrg();
  const [, navigate] = useLocation();
  return (
    <Confirm
      trigger={
        <Button size="sm" icon={<LogOut className="size-3.5" aria-hidden />}>
          Leave
        </Button>
      }
      title={`Leave ${org.name}?`}
      description="You lose access at once, and your API tokens for this organization stop working. Someone will have to invite you again."
      confirmLabel="Leave organization"
      onConfirm={async () => {
        try {
          await orgs.leaveOrganization({ organizationId: org.id });
          await invalidate(OrganizationService.method.listOrganizations);
          toast.success(`You left ${org.name}`);
          navigate("/", { replace: true });
        } catch (err) {
          toast.error("Couldn't leave the organization", err);
          throw err;
        }
      }}
    />
  );
}

function MemberRow({ m }: { m: Member }) {
  const org = useOrg();
  const me = useUser();
  const self = m.userId === me.id;
  const manage = can.manageMembers(org.role) && !self && m.role !== Role.OWNER;
  const [pending, setPending] = useState(false);

  async function changeRole(role: Role) {
    if (role === m.role) return;
    setPending(true);
    try {
      await orgs.changeMemberRole({ organizationId: org.id, userId: m.userId, role });
      await invalidate(OrganizationService.method.listMembers);
      toast.success(`${m.displayName || m.email} is now ${roleLabel[role].toLowerCase()}`);
    } catch (err) {
      toast.error("Couldn't change the role", err);
    } finally {
      setPending(false);
    }
  }

  return (
    <ListRow
      data-member={m.email}
      lead={<Avatar name={m.displayName || m.email} />}
      title={
        <>
          <span className="truncate">{m.displayName || m.email}</span>
          {self && <Badge tone="accent">You</Badge>}
        </>
      }
      details={
        <>
          {m.displayName ? `${m.email} · ` : ""}joined {formatDate(m.joinedAt)}
        </>
      }
      controls={
        <>
          <div className="flex sm:w-28 sm:justify-end">
            {manage ? (
              <RoleSelect
                size="sm"
                describe={false}
                className="w-28"
                aria-label={`Role of ${m.email}`}
                value={m.role}
                onChange={changeRole}
                disabled={pending}
                max={Role.ADMIN}
              />
            ) : (
              <Badge tone={m.role === Role.OWNER ? "accent" : "neutral"}>{roleLabel[m.role]}</Badge>
            )}
          </div>
          {self && can.leave(org.role) ? (
            <LeaveButton />
          ) : (
            can.manageMembers(org.role) && <div className="flex w-7 justify-end">{manage && <MemberActions m={m} />}</div>
          )}
        </>
      }
    />
  );
}

function InvitationRow({ inv }: { inv: Invitation }) {
  const org = useOrg();
  const pending = inv.state === InvitationState.PENDING;
  const tone = pending ? "warning" : inv.state === InvitationState.ACCEPTED ? "success" : "neutral";
  return (
    <ListRow
      data-invitation={inv.email}
      lead={
        <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
          <MailPlus className="size-4" aria-hidden />
        </div>
      }
      title={<span className="truncate">{inv.email}</span>}
      details={
        <>
          {roleLabel[inv.role]} · invited by {inv.invitedByEmail || "—"} {formatRelative(inv.createdAt)}
          {pending && <> · expires {formatRelative(inv.expiresAt)}</>}
        </>
      }
      controls={
        <>
          <Badge tone={tone}>{invitationStateLabel[inv.state]}</Badge>
          {pending && can.manageMembers(org.role) && (
            <Confirm
              trigger={<Button size="sm">Revoke</Button>}
              title={`Withdraw the invitation for ${inv.email}?`}
              description="The link in their email stops working. You can invite them again later."
              confirmLabel="Withdraw invitation"
              onConfirm={async () => {
                try {
                  await invitations.revokeInvitation({ organizationId: org.id, invitationId: inv.id });
                  await invalidate(InvitationService.method.listInvitations);
                  toast.success(`Invitation for ${inv.email} withdrawn`);
                } catch (err) {
                  toast.error("Couldn't withdraw the invitation", err);
                  throw err;
                }
              }}
            />
          )}
        </>
      }
    />
  );
}

export default function Members() {
  const org = useOrg();
  const [inviting, setInviting] = useState(false);
  const members = useQuery(OrganizationService.method.listMembers, { organizationId: org.id });
  const invs = useQuery(InvitationService.method.listInvitations, { organizationId: org.id });
  const mayInvite = can.manageMembers(org.role);
  const list = [...(members.data?.members ?? [])].sort((a, b) => b.role - a.role || a.email.localeCompare(b.email));
  const [showAnswered, setShowAnswered] = useState(false);
  const allInvs = invs.data?.invitations ?? [];
  const pendingInvs = allInvs.filter((i) => i.state === InvitationState.PENDING);
  const answered = allInvs.filter((i) => i.state !== InvitationState.PENDING);

  const inviteButton = (
    <Button
      variant="primary"
      icon={<MailPlus className="size-4" aria-hidden />}
      onClick={() => setInviting(true)}
      disabled={!mayInvite}
      aria-describedby={mayInvite ? undefined : "invite-hint"}
      data-testid="invite-button"
    >
      Invite people
    </Button>
  );

  return (
    <>
      <PageHeader title="Members" description={`Everyone in ${org.name} and what they may do.`} actions={inviteButton} />
      {!mayInvite && (
        <div className="mb-4" id="invite-hint">
          <Banner tone="accent">
            You're {org.role === Role.VIEWER ? "a viewer" : "a member"} here. Only admins and the owner can invite people or change roles.
          </Banner>
        </div>
      )}
      <div className="space-y-6">
        <Card>
          <CardHeader title="People" description={members.data ? `${list.length} ${list.length === 1 ? "member" : "members"}` : undefined} />
          {members.isPending ? (
            <SkeletonRows label="Loading members" />
          ) : members.isError ? (
            <ErrorState error={members.error} onRetry={() => void members.refetch()} />
          ) : (
            <ul className="divide-y divide-line" aria-label="Members">
              {list.map((m) => (
                <MemberRow key={m.userId} m={m} />
              ))}
            </ul>
          )}
        </Card>
        <Card>
          <CardHeader title="Invitations" description="Links sent by email; each works once." />
          {invs.isPending ? (
            <SkeletonRows rows={2} label="Loading invitations" />
          ) : invs.isError ? (
            <ErrorState error={invs.error} onRetry={() => void invs.refetch()} />
          ) : (
            <>
              {pendingInvs.length === 0 ? (
                <EmptyState
                  icon={<Users className="size-5" aria-hidden />}
                  title="No pending invitations"
                  action={
                    mayInvite && (
                      <Button variant="primary" onClick={() => setInviting(true)}>
                        Invite your team
                      </Button>
                    )
                  }
                >
                  {mayInvite ? "Invite people by email. They choose a password when they accept." : "Admins can invite people by email."}
                </EmptyState>
              ) : (
                <ul className="divide-y divide-line" aria-label="Pending invitations">
                  {pendingInvs.map((inv) => (
                    <InvitationRow key={inv.id} inv={inv} />
                  ))}
                </ul>
              )}
              {answered.length > 0 && (
                <div className="border-t border-line">
                  <button
                    type="button"
                    aria-expanded={showAnswered}
                    onClick={() => setShowAnswered((v) => !v)}
                    className="flex w-full items-center gap-1.5 px-4 py-2.5 text-left text-[13px] text-muted hover:text-fg sm:px-5"
                  >
                    <ChevronRight className={"size-4 transition-transform" + (showAnswered ? " rotate-90" : "")} aria-hidden />
                    {showAnswered ? "Hide" : "Show"} {answered.length} earlier {answered.length === 1 ? "invitation" : "invitations"}
                  </button>
                  {showAnswered && (
                    <ul className="divide-y divide-line border-t border-line" aria-label="Earlier invitations">
                      {answered.map((inv) => (
                        <InvitationRow key={inv.id} inv={inv} />
                      ))}
                    </ul>
                  )}
                </div>
              )}
            </>
          )}
        </Card>
      </div>
      {mayInvite && <InviteDialog open={inviting} onOpenChange={setInviting} />}
    </>
  );
}
