package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

// maxOwnedOrganizations is how many organizations one person may own.
const maxOwnedOrganizations = 20

// OrganizationService implements organizationv1connect.OrganizationServiceHandler.
//
// Membership changes lock the memberships they read (the caller's and the target's) and decide
// on the roles they find there, not on the role the interceptor saw a moment earlier: a role
// change racing an ownership transfer sees the transfer's outcome.
type OrganizationService struct {
	organizationv1connect.UnimplementedOrganizationServiceHandler
	opts Options
}

// CreateOrganization creates an organization owned by the caller. Without a slug, one is
// derived from the name and made unique with a numeric (then random) suffix; a slug the caller
// chose is used as given or refused when taken.
func (s *OrganizationService) CreateOrganization(ctx context.Context, req *connect.Request[orgv1.CreateOrganizationRequest]) (*connect.Response[orgv1.CreateOrganizationResponse], error) {
	p := mustPrincipal(ctx)
	name := strings.TrimSpace(req.Msg.GetName())
	if name == "" {
		return nil, auth.FieldError("name", "must not be blank")
	}
	slug := req.Msg.GetSlug()
	if slug != "" && !slugPattern.MatchString(slug) {
		return nil, auth.FieldError("slug", "must be 3 to 32 lower-case letters, digits and dashes, starting with a letter")
	}
	var org store.Organization
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		owned, err := q.CountOwnedOrganizations(ctx, p.UserID)
		if err != nil {
			return storeErr("user", err)
		}
		if owned >= maxOwnedOrganizations {
			return failedPrecondition("you own %d organizations, the most one person may own: delete one or transfer its ownership first", owned)
		}
		candidates := []string{slug}
		if slug == "" {
			candidates = slugCandidates(deriveSlug(name))
		}
		for _, c := range candidates {
			org, err = q.InsertOrganization(ctx, name, c)
			if !errors.Is(err, store.ErrConflict) {
				break
			}
		}
		if errors.Is(err, store.ErrConflict) {
			if slug != "" {
				return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("slug: %s is taken", slug))
			}
			return connect.NewError(connect.CodeAlreadyExists, errors.New("slug: every slug derived from the name is taken; choose one"))
		} else if err != nil {
			return storeErr("organization", err)
		}
		if err := q.AddMember(ctx, org.ID, p.UserID, store.RoleOwner); err != nil {
			return storeErr("membership", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, org.ID, "organization.created", "organization", org.ID.String(),
			map[string]string{"name": org.Name, "slug": org.Slug}))
		return err
	})
	if err != nil {
		return nil, storeErr("organization", err)
	}
	return connect.NewResponse(&orgv1.CreateOrganizationResponse{Organization: organizationMessage(
		store.MemberOrganization{Organization: org, Role: store.RoleOwner, MemberCount: 1}, store.RoleOwner)}), nil
}

// ListOrganizations lists the organizations the caller is a member of.
func (s *OrganizationService) ListOrganizations(ctx context.Context, _ *connect.Request[orgv1.ListOrganizationsRequest]) (*connect.Response[orgv1.ListOrganizationsResponse], error) {
	p := mustPrincipal(ctx)
	orgs, err := s.opts.Store.OrganizationsOfUser(ctx, p.UserID)
	if err != nil {
		return nil, storeErr("organizations", err)
	}
	resp := &orgv1.ListOrganizationsResponse{}
	for _, o := range orgs {
		resp.Organizations = append(resp.Organizations, organizationMessage(o, o.Role))
	}
	return connect.NewResponse(resp), nil
}

// GetOrganization returns the organization the interceptor admitted the caller to.
func (s *OrganizationService) GetOrganization(ctx context.Context, _ *connect.Request[orgv1.GetOrganizationRequest]) (*connect.Response[orgv1.GetOrganizationResponse], error) {
	p := mustPrincipal(ctx)
	o, err := s.opts.Store.OrganizationOfUser(ctx, p.OrgID, p.UserID)
	if err != nil {
		return nil, storeErr("organization", err)
	}
	return connect.NewResponse(&orgv1.GetOrganizationResponse{Organization: organizationMessage(o, min(o.Role, p.OrgRole))}), nil
}

// RenameOrganization changes the organization's name; the slug stays. Renaming to the current
// name changes nothing and records nothing.
func (s *OrganizationService) RenameOrganization(ctx context.Context, req *connect.Request[orgv1.RenameOrganizationRequest]) (*connect.Response[orgv1.RenameOrganizationResponse], error) {
	p := mustPrincipal(ctx)
	name := strings.TrimSpace(req.Msg.GetName())
	if name == "" {
		return nil, auth.FieldError("name", "must not be blank")
	}
	var o store.MemberOrganization
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		old, err := q.LockOrganization(ctx, p.OrgID)
		if err != nil {
			return storeErr("organization", err)
		}
		if old.Name != name {
			if _, err := q.RenameOrganization(ctx, p.OrgID, name); err != nil {
				return storeErr("organization", err)
			}
			if _, err := q.InsertActivity(ctx, event(ctx, p.OrgID, "organization.renamed", "organization", p.OrgID.String(),
				map[string]string{"old_name": old.Name, "new_name": name})); err != nil {
				return err
			}
		}
		o, err = q.OrganizationOfUser(ctx, p.OrgID, p.UserID)
		return storeErr("organization", err)
	})
	if err != nil {
		return nil, storeErr("organization", err)
	}
	return connect.NewResponse(&orgv1.RenameOrganizationResponse{Organization: organizationMessage(o, min(o.Role, p.OrgRole))}), nil
}

// DeleteOrganization deletes the organization; memberships, invitations and API tokens go with
// it through foreign keys. The activity row is written first and keeps the organization's id,
// so the history survives for platform admins.
func (s *OrganizationService) DeleteOrganization(ctx context.Context, req *connect.Request[orgv1.DeleteOrganizationRequest]) (*connect.Response[orgv1.DeleteOrganizationResponse], error) {
	p := mustPrincipal(ctx)
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		org, err := q.LockOrganization(ctx, p.OrgID)
		if err != nil {
			return storeErr("organization", err)
		}
		if req.Msg.GetConfirmSlug() != org.Slug {
			return auth.FieldError("confirm_slug", "must match the organization's slug")
		}
		_, role, err := lockMembers(ctx, q, p)
		if err != nil {
			return err
		}
		if role != store.RoleOwner {
			return connect.NewError(connect.CodePermissionDenied, errors.New("only the owner can delete the organization"))
		}
		apps, err := q.Apps(ctx, org.ID)
		if err != nil {
			return storeErr("apps", err)
		}
		if len(apps) > 0 {
			return failedPrecondition("the organization still has %d apps: delete them first", len(apps))
		}
		if _, err := q.InsertActivity(ctx, event(ctx, org.ID, "organization.deleted", "organization", org.ID.String(),
			map[string]string{"name": org.Name, "slug": org.Slug})); err != nil {
			return err
		}
		return q.DeleteOrganization(ctx, org.ID)
	})
	if err != nil {
		return nil, storeErr("organization", err)
	}
	return connect.NewResponse(&orgv1.DeleteOrganizationResponse{}), nil
}

// ListMembers lists the organization's members, highest role first.
func (s *OrganizationService) ListMembers(ctx context.Context, _ *connect.Request[orgv1.ListMembersRequest]) (*connect.Response[orgv1.ListMembersResponse], error) {
	p := mustPrincipal(ctx)
	members, err := s.opts.Store.ListMembers(ctx, p.OrgID)
	if err != nil {
		return nil, storeErr("members", err)
	}
	resp := &orgv1.ListMembersResponse{}
	for _, m := range members {
		resp.Members = append(resp.Members, memberMessage(m))
	}
	return connect.NewResponse(resp), nil
}

// ChangeMemberRole sets a member's role between viewer, member and admin. Nobody changes the
// owner's role (ownership moves only by transfer) nor their own; admins move others only
// between viewer and member, and only the owner makes or unmakes admins. Setting the role a
// member already has changes nothing and records nothing.
func (s *OrganizationService) ChangeMemberRole(ctx context.Context, req *connect.Request[orgv1.ChangeMemberRoleRequest]) (*connect.Response[orgv1.ChangeMemberRoleResponse], error) {
	p := mustPrincipal(ctx)
	target, err := uuid.Parse(req.Msg.GetUserId())
	if err != nil {
		return nil, auth.FieldError("user_id", "must be a UUID")
	}
	role := store.Role(req.Msg.GetRole())
	if role < store.RoleViewer || role > store.RoleAdmin {
		return nil, auth.FieldError("role", "must be viewer, member or admin")
	}
	var member store.Member
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		ms, myRole, err := lockMembers(ctx, q, p, target)
		if err != nil {
			return err
		}
		if err := needRole(myRole, store.RoleAdmin); err != nil {
			return err
		}
		m, ok := ms[target]
		switch {
		case !ok:
			return connect.NewError(connect.CodeNotFound, errors.New("member not found"))
		case m.Role == store.RoleOwner:
			return connect.NewError(connect.CodePermissionDenied, errors.New("the owner's role cannot be changed: the owner transfers ownership instead"))
		case target == p.UserID:
			return connect.NewError(connect.CodePermissionDenied, errors.New("you cannot change your own role"))
		case myRole != store.RoleOwner && (m.Role == store.RoleAdmin || role == store.RoleAdmin):
			return connect.NewError(connect.CodePermissionDenied, errors.New("only the owner can make someone an admin or change an admin's role"))
		case m.Role == role:
			member = m
			return nil
		}
		member, err = q.SetMemberRole(ctx, p.OrgID, target, role)
		if err != nil {
			return storeErr("member", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "organization.member.role_changed", "member", target.String(),
			map[string]string{"user_id": target.String(), "email": m.Email, "old_role": m.Role.String(), "new_role": role.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("member", err)
	}
	return connect.NewResponse(&orgv1.ChangeMemberRoleResponse{Member: memberMessage(member)}), nil
}

// RemoveMember removes a member other than the owner and the caller (who leaves instead).
// Admins remove viewers and members; only the owner removes admins.
func (s *OrganizationService) RemoveMember(ctx context.Context, req *connect.Request[orgv1.RemoveMemberRequest]) (*connect.Response[orgv1.RemoveMemberResponse], error) {
	p := mustPrincipal(ctx)
	target, err := uuid.Parse(req.Msg.GetUserId())
	if err != nil {
		return nil, auth.FieldError("user_id", "must be a UUID")
	}
	if target == p.UserID {
		return nil, failedPrecondition("you cannot remove yourself: leave the organization instead")
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		ms, myRole, err := lockMembers(ctx, q, p, target)
		if err != nil {
			return err
		}
		if err := needRole(myRole, store.RoleAdmin); err != nil {
			return err
		}
		m, ok := ms[target]
		switch {
		case !ok:
			return connect.NewError(connect.CodeNotFound, errors.New("member not found"))
		case m.Role == store.RoleOwner:
			return connect.NewError(connect.CodePermissionDenied, errors.New("the owner cannot be removed"))
		case m.Role == store.RoleAdmin && myRole != store.RoleOwner:
			return connect.NewError(connect.CodePermissionDenied, errors.New("only the owner can remove an admin"))
		}
		revoked, err := q.DeleteMember(ctx, p.OrgID, target)
		if err != nil {
			return storeErr("member", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "organization.member.removed", "member", target.String(),
			map[string]string{"user_id": target.String(), "email": m.Email, "role": m.Role.String(),
				"api_tokens_revoked": strconv.FormatInt(revoked, 10)}))
		return err
	})
	if err != nil {
		return nil, storeErr("member", err)
	}
	return connect.NewResponse(&orgv1.RemoveMemberResponse{}), nil
}

// LeaveOrganization removes the caller from the organization. The owner transfers ownership
// first, so an organization never lacks one.
func (s *OrganizationService) LeaveOrganization(ctx context.Context, _ *connect.Request[orgv1.LeaveOrganizationRequest]) (*connect.Response[orgv1.LeaveOrganizationResponse], error) {
	p := mustPrincipal(ctx)
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		ms, _, err := lockMembers(ctx, q, p)
		if err != nil {
			return err
		}
		me := ms[p.UserID]
		if me.Role == store.RoleOwner {
			return failedPrecondition("transfer ownership before leaving")
		}
		revoked, err := q.DeleteMember(ctx, p.OrgID, p.UserID)
		if err != nil {
			return storeErr("member", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "organization.member.left", "member", p.UserID.String(),
			map[string]string{"user_id": p.UserID.String(), "email": me.Email, "role": me.Role.String(),
				"api_tokens_revoked": strconv.FormatInt(revoked, 10)}))
		return err
	})
	if err != nil {
		return nil, storeErr("membership", err)
	}
	return connect.NewResponse(&orgv1.LeaveOrganizationResponse{}), nil
}

// TransferOwnership makes another member the owner and the caller an admin, in one
// transaction: the caller is demoted before the target is promoted, as the one-owner index
// requires. The target must have room under the ownership limit.
func (s *OrganizationService) TransferOwnership(ctx context.Context, req *connect.Request[orgv1.TransferOwnershipRequest]) (*connect.Response[orgv1.TransferOwnershipResponse], error) {
	p := mustPrincipal(ctx)
	target, err := uuid.Parse(req.Msg.GetUserId())
	if err != nil {
		return nil, auth.FieldError("user_id", "must be a UUID")
	}
	if target == p.UserID {
		return nil, auth.FieldError("user_id", "must be another member: you already own this organization")
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		ms, myRole, err := lockMembers(ctx, q, p, target)
		if err != nil {
			return err
		}
		if myRole != store.RoleOwner {
			return connect.NewError(connect.CodePermissionDenied, errors.New("only the owner can transfer ownership"))
		}
		m, ok := ms[target]
		if !ok {
			return connect.NewError(connect.CodeNotFound, errors.New("member not found"))
		}
		owned, err := q.CountOwnedOrganizations(ctx, target)
		if err != nil {
			return storeErr("user", err)
		}
		if owned >= maxOwnedOrganizations {
			return failedPrecondition("%s already owns %d organizations, the most one person may own", m.Email, owned)
		}
		if _, err := q.SetMemberRole(ctx, p.OrgID, p.UserID, store.RoleAdmin); err != nil {
			return storeErr("member", err)
		}
		if _, err := q.SetMemberRole(ctx, p.OrgID, target, store.RoleOwner); err != nil {
			return storeErr("member", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "organization.ownership_transferred", "organization", p.OrgID.String(),
			map[string]string{"from": p.UserID.String(), "to": target.String(), "from_email": ms[p.UserID].Email, "to_email": m.Email}))
		return err
	})
	if err != nil {
		return nil, storeErr("member", err)
	}
	return connect.NewResponse(&orgv1.TransferOwnershipResponse{}), nil
}

// lockMembers locks the caller's membership in the organization the interceptor checked, and
// those of others, and returns them with the caller's role as it is now, capped by the role
// the interceptor admitted (an API token's role may be lower than its creator's).
func lockMembers(ctx context.Context, q *store.Queries, p *auth.Principal, others ...uuid.UUID) (map[uuid.UUID]store.Member, store.Role, error) {
	ms, err := q.LockMembers(ctx, p.OrgID, append([]uuid.UUID{p.UserID}, others...)...)
	if err != nil {
		return nil, 0, storeErr("members", err)
	}
	me, ok := ms[p.UserID]
	if !ok {
		return nil, 0, connect.NewError(connect.CodePermissionDenied, errors.New("you are not a member of this organization"))
	}
	return ms, min(me.Role, p.OrgRole), nil
}

// needRole refuses a caller whose role (re-read under lock) fell below what the RPC needs.
func needRole(have, need store.Role) error {
	if have < need {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("this needs the %s role; you have %s", need, have))
	}
	return nil
}

// slugPattern is the organizations.slug check of the schema.
var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}[a-z0-9]$`)

const maxSlugLen = 32

// deriveSlug turns an organization's name into a slug: lower-case ASCII letters and digits,
// runs of anything else as one dash, "org-" before a leading digit, "-org" after a name too
// short, and cut to 32 characters. Names with no letters or digits at all become "org".
func deriveSlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	s := b.String()
	switch {
	case s == "":
		return "org"
	case s[0] >= '0' && s[0] <= '9':
		s = "org-" + s
	}
	if len(s) < 3 {
		s += "-org"
	}
	return trimSlug(s, maxSlugLen)
}

// trimSlug cuts s to at most n characters without leaving a trailing dash.
func trimSlug(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, "-")
}

// slugCandidates are the slugs tried in turn for a derived base: the base, then base-2 to
// base-9, then a few random suffixes (which a busy platform needs only for common names).
func slugCandidates(base string) []string {
	out := []string{base}
	suffix := func(sfx string) string { return trimSlug(base, maxSlugLen-len(sfx)) + sfx }
	for i := 2; i <= 9; i++ {
		out = append(out, suffix("-"+strconv.Itoa(i)))
	}
	for range 5 {
		out = append(out, suffix("-"+strings.ToLower(rand.Text()[:6])))
	}
	return out
}

func organizationMessage(o store.MemberOrganization, role store.Role) *orgv1.Organization {
	return &orgv1.Organization{
		Id: o.ID.String(), Name: o.Name, Slug: o.Slug, CreatedAt: ts(o.CreatedAt),
		Role: orgv1.Role(role), MemberCount: o.MemberCount,
	}
}

func memberMessage(m store.Member) *orgv1.Member {
	return &orgv1.Member{
		UserId: m.UserID.String(), Email: m.Email, DisplayName: m.DisplayName,
		Role: orgv1.Role(m.Role), JoinedAt: ts(m.JoinedAt),
	}
}
