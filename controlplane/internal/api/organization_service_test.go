package api_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

// orgBundle is a running control plane and the helpers the organization and invitation tests
// share.
type orgBundle struct {
	env *testenv.Env
	ctx context.Context
}

func setupOrgs(t *testing.T, opts ...testenv.Option) *orgBundle {
	t.Helper()
	return &orgBundle{env: testenv.Start(t, opts...), ctx: t.Context()}
}

func (b *orgBundle) orgs(token string) organizationv1connect.OrganizationServiceClient {
	return testenv.Client(b.env, organizationv1connect.NewOrganizationServiceClient, token)
}

func (b *orgBundle) invitations(token string) organizationv1connect.InvitationServiceClient {
	return testenv.Client(b.env, organizationv1connect.NewInvitationServiceClient, token)
}

func (b *orgBundle) createOrg(t *testing.T, owner *testenv.User, name, slug string) *orgv1.Organization {
	t.Helper()
	resp, err := b.orgs(owner.Token).CreateOrganization(b.ctx, connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: name, Slug: slug}))
	require.NoError(t, err)
	return resp.Msg.GetOrganization()
}

// addMember puts u in the organization; people join through invitations, which have their
// own tests, so the organization tests take the short way.
func (b *orgBundle) addMember(t *testing.T, org string, u *testenv.User, role store.Role) {
	t.Helper()
	require.NoError(t, b.env.Store.AddMember(b.ctx, uuid.MustParse(org), u.ID, role))
}

func (b *orgBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.env.Store.Pool().Exec(b.ctx, sql, args...)
	require.NoError(t, err)
}

func (b *orgBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx, sql, args...).Scan(&n))
	return n
}

func (b *orgBundle) members(t *testing.T, token, org string) map[string]orgv1.Role {
	t.Helper()
	resp, err := b.orgs(token).ListMembers(b.ctx, connect.NewRequest(&orgv1.ListMembersRequest{OrganizationId: org}))
	require.NoError(t, err)
	out := map[string]orgv1.Role{}
	for _, m := range resp.Msg.GetMembers() {
		out[m.GetEmail()] = m.GetRole()
	}
	return out
}

// orgEvent is one activity_events row as these tests read it.
type orgEvent struct {
	OrganizationID *uuid.UUID
	ActorEmail     string
	EntityType     string
	EntityID       string
	Metadata       map[string]string
}

// events returns the rows of one event type, oldest first.
func (b *orgBundle) events(t *testing.T, eventType string) []orgEvent {
	t.Helper()
	rows, err := b.env.Store.Pool().Query(b.ctx, `
		SELECT organization_id, actor_email, entity_type, entity_id, metadata
		FROM activity_events WHERE event_type = $1 ORDER BY id`, eventType)
	require.NoError(t, err)
	defer rows.Close()
	var out []orgEvent
	for rows.Next() {
		var e orgEvent
		require.NoError(t, rows.Scan(&e.OrganizationID, &e.ActorEmail, &e.EntityType, &e.EntityID, &e.Metadata))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// requireOneEvent asserts exactly one eventType row, in the organization, by the actor.
func (b *orgBundle) requireOneEvent(t *testing.T, eventType, org, actorEmail string) orgEvent {
	t.Helper()
	evs := b.events(t, eventType)
	require.Len(t, evs, 1, eventType)
	e := evs[0]
	require.NotNil(t, e.OrganizationID, eventType)
	require.Equal(t, org, e.OrganizationID.String(), eventType)
	require.Equal(t, actorEmail, e.ActorEmail, eventType)
	return e
}

func requireOrgCode(t *testing.T, err error, code connect.Code, msgContains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, connect.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), msgContains)
}

func TestOrganizationCreateListGetRenameDelete(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	bob := b.env.NewUser(t, "bob@example.com")

	org := b.createOrg(t, alice, "Acme Inc", "")
	require.Equal(t, "Acme Inc", org.GetName())
	require.Equal(t, "acme-inc", org.GetSlug())
	require.Equal(t, orgv1.Role_ROLE_OWNER, org.GetRole())
	require.EqualValues(t, 1, org.GetMemberCount())
	require.NotNil(t, org.GetCreatedAt())
	created := b.requireOneEvent(t, "organization.created", org.GetId(), alice.Email)
	require.Equal(t, "organization", created.EntityType)
	require.Equal(t, org.GetId(), created.EntityID)
	require.Equal(t, "acme-inc", created.Metadata["slug"])

	b.addMember(t, org.GetId(), bob, store.RoleMember)

	t.Run("the list shows each caller's own role and the member count", func(t *testing.T) {
		for _, c := range []struct {
			user *testenv.User
			role orgv1.Role
		}{{alice, orgv1.Role_ROLE_OWNER}, {bob, orgv1.Role_ROLE_MEMBER}} {
			list, err := b.orgs(c.user.Token).ListOrganizations(b.ctx, connect.NewRequest(&orgv1.ListOrganizationsRequest{}))
			require.NoError(t, err)
			require.Len(t, list.Msg.GetOrganizations(), 1)
			require.Equal(t, org.GetId(), list.Msg.GetOrganizations()[0].GetId())
			require.Equal(t, c.role, list.Msg.GetOrganizations()[0].GetRole())
			require.EqualValues(t, 2, list.Msg.GetOrganizations()[0].GetMemberCount())

			got, err := b.orgs(c.user.Token).GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: org.GetId()}))
			require.NoError(t, err)
			require.Equal(t, c.role, got.Msg.GetOrganization().GetRole())
			require.Equal(t, "acme-inc", got.Msg.GetOrganization().GetSlug())
		}
	})

	t.Run("a member cannot rename; an admin or the owner can, and the slug stays", func(t *testing.T) {
		_, err := b.orgs(bob.Token).RenameOrganization(b.ctx, connect.NewRequest(&orgv1.RenameOrganizationRequest{OrganizationId: org.GetId(), Name: "Bob's"}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "admin")

		_, err = b.orgs(alice.Token).RenameOrganization(b.ctx, connect.NewRequest(&orgv1.RenameOrganizationRequest{OrganizationId: org.GetId(), Name: "   "}))
		requireOrgCode(t, err, connect.CodeInvalidArgument, "name")

		resp, err := b.orgs(alice.Token).RenameOrganization(b.ctx, connect.NewRequest(&orgv1.RenameOrganizationRequest{OrganizationId: org.GetId(), Name: "Acme Corp"}))
		require.NoError(t, err)
		require.Equal(t, "Acme Corp", resp.Msg.GetOrganization().GetName())
		require.Equal(t, "acme-inc", resp.Msg.GetOrganization().GetSlug())
		require.EqualValues(t, 2, resp.Msg.GetOrganization().GetMemberCount())
		renamed := b.requireOneEvent(t, "organization.renamed", org.GetId(), alice.Email)
		require.Equal(t, map[string]string{"old_name": "Acme Inc", "new_name": "Acme Corp"}, renamed.Metadata)
	})

	t.Run("deleting needs the owner and the slug repeated", func(t *testing.T) {
		// Things the organization owns, which must go with it.
		_, err := b.invitations(alice.Token).CreateInvitation(b.ctx, connect.NewRequest(&orgv1.CreateInvitationRequest{
			OrganizationId: org.GetId(), Email: "carol@example.com", Role: orgv1.Role_ROLE_VIEWER,
		}))
		require.NoError(t, err)
		secret, hash := auth.NewToken(auth.KindAPI)
		b.exec(t, `INSERT INTO api_tokens (organization_id, name, role, token_hash, prefix, created_by)
			VALUES ($1, 'ci', 2, $2, $3, $4)`, org.GetId(), hash, auth.TokenPrefix(secret), alice.ID)

		_, err = b.orgs(bob.Token).DeleteOrganization(b.ctx, connect.NewRequest(&orgv1.DeleteOrganizationRequest{OrganizationId: org.GetId(), ConfirmSlug: "acme-inc"}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "owner")
		_, err = b.orgs(alice.Token).DeleteOrganization(b.ctx, connect.NewRequest(&orgv1.DeleteOrganizationRequest{OrganizationId: org.GetId(), ConfirmSlug: "Acme Corp"}))
		requireOrgCode(t, err, connect.CodeInvalidArgument, "confirm_slug: must match the organization's slug")
		require.Empty(t, b.events(t, "organization.deleted"), "a refused deletion records nothing")

		_, err = b.orgs(alice.Token).DeleteOrganization(b.ctx, connect.NewRequest(&orgv1.DeleteOrganizationRequest{OrganizationId: org.GetId(), ConfirmSlug: "acme-inc"}))
		require.NoError(t, err)

		_, err = b.orgs(alice.Token).GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: org.GetId()}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
		list, err := b.orgs(bob.Token).ListOrganizations(b.ctx, connect.NewRequest(&orgv1.ListOrganizationsRequest{}))
		require.NoError(t, err)
		require.Empty(t, list.Msg.GetOrganizations())
		for _, table := range []string{"memberships", "invitations", "api_tokens"} {
			require.Zero(t, b.count(t, `SELECT count(*) FROM `+table+` WHERE organization_id = $1`, org.GetId()), table)
		}
		deleted := b.requireOneEvent(t, "organization.deleted", org.GetId(), alice.Email)
		require.Equal(t, "acme-inc", deleted.Metadata["slug"])
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM activity_events WHERE organization_id = $1 AND event_type = 'organization.created'`, org.GetId()),
			"the organization's history outlives it")
	})
}

func TestOrganizationSlugIsDerivedFromTheNameAndKeptUnique(t *testing.T) {
	b := setupOrgs(t)
	alice := b.env.NewUser(t, "alice@example.com")
	for _, c := range []struct{ name, slug string }{
		{"Acme Inc.", "acme-inc"},
		{"ACME, inc", "acme-inc-2"},
		{"  acme -- inc  ", "acme-inc-3"},
		{"42 Widgets", "org-42-widgets"},
		{"X", "x-org"},
		{"Ünïcode Café", "n-code-caf"},
		{"!!!", "org"},
		{"¡¡¡", "org-2"},
		{"The Quite Remarkably Long Organization Name", "the-quite-remarkably-long-organi"},
		{"The Quite Remarkably Long Organization Name", "the-quite-remarkably-long-orga-2"},
	} {
		t.Run(c.name+" becomes "+c.slug, func(t *testing.T) {
			org := b.createOrg(t, alice, c.name, "")
			require.Equal(t, c.slug, org.GetSlug())
			require.Equal(t, strings.TrimSpace(c.name), org.GetName(), "names are trimmed")
		})
	}

	t.Run("a chosen slug is used as given, and refused when taken", func(t *testing.T) {
		org := b.createOrg(t, alice, "Acme Inc.", "team-1")
		require.Equal(t, "team-1", org.GetSlug())
		_, err := b.orgs(alice.Token).CreateOrganization(b.ctx, connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: "Other", Slug: "acme-inc"}))
		requireOrgCode(t, err, connect.CodeAlreadyExists, "slug: acme-inc is taken")
		_, err = b.orgs(alice.Token).CreateOrganization(b.ctx, connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: "Other", Slug: "1-bad"}))
		requireOrgCode(t, err, connect.CodeInvalidArgument, "slug")
	})

	t.Run("after nine numbered slugs a random suffix is used", func(t *testing.T) {
		bob := b.env.NewUser(t, "bob@example.com")
		for i := range 9 {
			org := b.createOrg(t, bob, "Beta", "")
			if i == 0 {
				require.Equal(t, "beta", org.GetSlug())
			}
		}
		org := b.createOrg(t, bob, "Beta", "")
		require.Regexp(t, regexp.MustCompile(`^beta-[a-z2-7]{6}$`), org.GetSlug())
	})
	require.Len(t, b.events(t, "organization.created"), 21, "one row per organization created, none for the refused ones")
}

func TestOrganizationOwnerMayOwnAtMostTwenty(t *testing.T) {
	b := setupOrgs(t)
	alice := b.env.NewUser(t, "alice@example.com")
	bob := b.env.NewUser(t, "bob@example.com")
	var first *orgv1.Organization
	for i := range 20 {
		org := b.createOrg(t, alice, "Org", "")
		if i == 0 {
			first = org
		}
	}
	_, err := b.orgs(alice.Token).CreateOrganization(b.ctx, connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: "One too many"}))
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "you own 20 organizations")
	require.Len(t, b.events(t, "organization.created"), 20)

	// Nor can ownership be handed to her.
	bobs := b.createOrg(t, bob, "Bob's", "").GetId()
	b.addMember(t, bobs, alice, store.RoleMember)
	transfer := func(by *testenv.User, org string, to *testenv.User) error {
		_, err := b.orgs(by.Token).TransferOwnership(b.ctx, connect.NewRequest(&orgv1.TransferOwnershipRequest{OrganizationId: org, UserId: to.ID.String()}))
		return err
	}
	requireOrgCode(t, transfer(bob, bobs, alice), connect.CodeFailedPrecondition, "alice@example.com already owns 20 organizations")

	// Handing one over frees a place; membership without ownership does not count.
	b.addMember(t, first.GetId(), bob, store.RoleMember)
	require.NoError(t, transfer(alice, first.GetId(), bob))
	require.NoError(t, transfer(bob, bobs, alice))
	_, err = b.orgs(alice.Token).CreateOrganization(b.ctx, connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: "One too many"}))
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "you own 20 organizations")
	require.NoError(t, transfer(alice, bobs, bob))
	b.createOrg(t, alice, "One more", "")
}

func TestOrganizationRoleChangesFollowTheRules(t *testing.T) {
	b := setupOrgs(t)
	owner := b.env.NewUser(t, "owner@example.com")
	admin := b.env.NewUser(t, "admin@example.com")
	admin2 := b.env.NewUser(t, "admin2@example.com")
	member := b.env.NewUser(t, "member@example.com")
	viewer := b.env.NewUser(t, "viewer@example.com")
	outsider := b.env.NewUser(t, "outsider@example.com")
	org := b.createOrg(t, owner, "Acme", "").GetId()
	b.addMember(t, org, admin, store.RoleAdmin)
	b.addMember(t, org, admin2, store.RoleAdmin)
	b.addMember(t, org, member, store.RoleMember)
	b.addMember(t, org, viewer, store.RoleViewer)

	change := func(by, target *testenv.User, role orgv1.Role) (*orgv1.Member, error) {
		resp, err := b.orgs(by.Token).ChangeMemberRole(b.ctx, connect.NewRequest(&orgv1.ChangeMemberRoleRequest{
			OrganizationId: org, UserId: target.ID.String(), Role: role,
		}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetMember(), nil
	}
	refused := []struct {
		name         string
		by, target   *testenv.User
		role         orgv1.Role
		code         connect.Code
		msgContains  string
		expectedRole orgv1.Role
	}{
		{"a member cannot change roles", member, viewer, orgv1.Role_ROLE_MEMBER, connect.CodePermissionDenied, "needs the admin role", orgv1.Role_ROLE_VIEWER},
		{"an admin cannot promote to admin", admin, member, orgv1.Role_ROLE_ADMIN, connect.CodePermissionDenied, "only the owner", orgv1.Role_ROLE_MEMBER},
		{"an admin cannot demote another admin", admin, admin2, orgv1.Role_ROLE_MEMBER, connect.CodePermissionDenied, "only the owner", orgv1.Role_ROLE_ADMIN},
		{"an admin cannot change their own role", admin, admin, orgv1.Role_ROLE_MEMBER, connect.CodePermissionDenied, "your own role", orgv1.Role_ROLE_ADMIN},
		{"an admin cannot change the owner's role", admin, owner, orgv1.Role_ROLE_VIEWER, connect.CodePermissionDenied, "owner's role cannot be changed", orgv1.Role_ROLE_OWNER},
		{"the owner cannot change their own role", owner, owner, orgv1.Role_ROLE_ADMIN, connect.CodePermissionDenied, "owner's role cannot be changed", orgv1.Role_ROLE_OWNER},
		{"nobody can make an owner this way", owner, admin, orgv1.Role_ROLE_OWNER, connect.CodeInvalidArgument, "role", orgv1.Role_ROLE_ADMIN},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := change(c.by, c.target, c.role)
			requireOrgCode(t, err, c.code, c.msgContains)
			require.Equal(t, c.expectedRole, b.members(t, owner.Token, org)[c.target.Email])
		})
	}
	t.Run("a user who is not a member is not found", func(t *testing.T) {
		_, err := change(owner, outsider, orgv1.Role_ROLE_MEMBER)
		requireOrgCode(t, err, connect.CodeNotFound, "member not found")
	})
	require.Empty(t, b.events(t, "organization.member.role_changed"), "refusals record nothing")

	t.Run("an admin moves others between viewer and member", func(t *testing.T) {
		m, err := change(admin, viewer, orgv1.Role_ROLE_MEMBER)
		require.NoError(t, err)
		require.Equal(t, orgv1.Role_ROLE_MEMBER, m.GetRole())
		require.Equal(t, viewer.Email, m.GetEmail())
		_, err = change(admin, member, orgv1.Role_ROLE_VIEWER)
		require.NoError(t, err)
		roles := b.members(t, owner.Token, org)
		require.Equal(t, orgv1.Role_ROLE_MEMBER, roles[viewer.Email])
		require.Equal(t, orgv1.Role_ROLE_VIEWER, roles[member.Email])
	})
	t.Run("the owner makes and unmakes admins", func(t *testing.T) {
		_, err := change(owner, member, orgv1.Role_ROLE_ADMIN)
		require.NoError(t, err)
		_, err = change(owner, admin2, orgv1.Role_ROLE_VIEWER)
		require.NoError(t, err)
		roles := b.members(t, owner.Token, org)
		require.Equal(t, orgv1.Role_ROLE_ADMIN, roles[member.Email])
		require.Equal(t, orgv1.Role_ROLE_VIEWER, roles[admin2.Email])
	})
	t.Run("setting the role a member has changes nothing", func(t *testing.T) {
		m, err := change(owner, member, orgv1.Role_ROLE_ADMIN)
		require.NoError(t, err)
		require.Equal(t, orgv1.Role_ROLE_ADMIN, m.GetRole())
	})

	evs := b.events(t, "organization.member.role_changed")
	require.Len(t, evs, 4, "one row per change")
	require.Equal(t, admin.Email, evs[0].ActorEmail)
	require.Equal(t, "member", evs[0].EntityType)
	require.Equal(t, viewer.ID.String(), evs[0].EntityID)
	require.Equal(t, map[string]string{
		"user_id": viewer.ID.String(), "email": viewer.Email, "old_role": "viewer", "new_role": "member",
	}, evs[0].Metadata)
	require.Equal(t, owner.Email, evs[3].ActorEmail)
	require.Equal(t, "admin", evs[3].Metadata["old_role"])
	require.Equal(t, "viewer", evs[3].Metadata["new_role"])
}

func TestOrganizationRemoveMember(t *testing.T) {
	b := setupOrgs(t)
	owner := b.env.NewUser(t, "owner@example.com")
	admin := b.env.NewUser(t, "admin@example.com")
	admin2 := b.env.NewUser(t, "admin2@example.com")
	member := b.env.NewUser(t, "member@example.com")
	viewer := b.env.NewUser(t, "viewer@example.com")
	org := b.createOrg(t, owner, "Acme", "").GetId()
	b.addMember(t, org, admin, store.RoleAdmin)
	b.addMember(t, org, admin2, store.RoleAdmin)
	b.addMember(t, org, member, store.RoleMember)
	b.addMember(t, org, viewer, store.RoleViewer)

	remove := func(by, target *testenv.User) error {
		_, err := b.orgs(by.Token).RemoveMember(b.ctx, connect.NewRequest(&orgv1.RemoveMemberRequest{OrganizationId: org, UserId: target.ID.String()}))
		return err
	}
	t.Run("who may not remove whom", func(t *testing.T) {
		requireOrgCode(t, remove(member, viewer), connect.CodePermissionDenied, "needs the admin role")
		requireOrgCode(t, remove(admin, admin2), connect.CodePermissionDenied, "only the owner can remove an admin")
		requireOrgCode(t, remove(admin, owner), connect.CodePermissionDenied, "the owner cannot be removed")
		requireOrgCode(t, remove(admin, admin), connect.CodeFailedPrecondition, "leave the organization instead")
		requireOrgCode(t, remove(owner, owner), connect.CodeFailedPrecondition, "leave the organization instead")
		require.Len(t, b.members(t, owner.Token, org), 5)
		require.Empty(t, b.events(t, "organization.member.removed"))
	})

	t.Run("an admin removes a viewer, whose API tokens are revoked", func(t *testing.T) {
		b.exec(t, `UPDATE memberships SET role = 2 WHERE user_id = $1`, viewer.ID)
		secret, hash := auth.NewToken(auth.KindAPI)
		b.exec(t, `INSERT INTO api_tokens (organization_id, name, role, token_hash, prefix, created_by)
			VALUES ($1, 'ci', 2, $2, $3, $4)`, org, hash, auth.TokenPrefix(secret), viewer.ID)
		b.exec(t, `UPDATE memberships SET role = 1 WHERE user_id = $1`, viewer.ID)

		require.NoError(t, remove(admin, viewer))
		require.NotContains(t, b.members(t, owner.Token, org), viewer.Email)
		_, err := b.orgs(viewer.Token).GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: org}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM api_tokens WHERE created_by = $1 AND revoked_at IS NOT NULL`, viewer.ID))
		e := b.requireOneEvent(t, "organization.member.removed", org, admin.Email)
		require.Equal(t, viewer.ID.String(), e.EntityID)
		require.Equal(t, viewer.Email, e.Metadata["email"])
		require.Equal(t, "viewer", e.Metadata["role"])
		require.Equal(t, "1", e.Metadata["api_tokens_revoked"])

		requireOrgCode(t, remove(admin, viewer), connect.CodeNotFound, "member not found")
	})

	t.Run("the owner removes an admin", func(t *testing.T) {
		require.NoError(t, remove(owner, admin2))
		require.Equal(t, map[string]orgv1.Role{
			owner.Email: orgv1.Role_ROLE_OWNER, admin.Email: orgv1.Role_ROLE_ADMIN, member.Email: orgv1.Role_ROLE_MEMBER,
		}, b.members(t, owner.Token, org))
		require.Len(t, b.events(t, "organization.member.removed"), 2)
	})
}

func TestOrganizationLeave(t *testing.T) {
	b := setupOrgs(t)
	owner := b.env.NewUser(t, "owner@example.com")
	member := b.env.NewUser(t, "member@example.com")
	org := b.createOrg(t, owner, "Acme", "").GetId()
	b.addMember(t, org, member, store.RoleMember)
	leave := func(u *testenv.User) error {
		_, err := b.orgs(u.Token).LeaveOrganization(b.ctx, connect.NewRequest(&orgv1.LeaveOrganizationRequest{OrganizationId: org}))
		return err
	}

	requireOrgCode(t, leave(owner), connect.CodeFailedPrecondition, "transfer ownership before leaving")
	require.Empty(t, b.events(t, "organization.member.left"))

	require.NoError(t, leave(member))
	list, err := b.orgs(member.Token).ListOrganizations(b.ctx, connect.NewRequest(&orgv1.ListOrganizationsRequest{}))
	require.NoError(t, err)
	require.Empty(t, list.Msg.GetOrganizations())
	require.Equal(t, map[string]orgv1.Role{owner.Email: orgv1.Role_ROLE_OWNER}, b.members(t, owner.Token, org))
	e := b.requireOneEvent(t, "organization.member.left", org, member.Email)
	require.Equal(t, member.ID.String(), e.EntityID)
	require.Equal(t, "member", e.Metadata["role"])

	requireOrgCode(t, leave(member), connect.CodePermissionDenied, "not a member")
}

func TestOrganizationTransferOwnership(t *testing.T) {
	b := setupOrgs(t)
	alice := b.env.NewUser(t, "alice@example.com")
	bob := b.env.NewUser(t, "bob@example.com")
	carol := b.env.NewUser(t, "carol@example.com")
	outsider := b.env.NewUser(t, "outsider@example.com")
	org := b.createOrg(t, alice, "Acme", "acme").GetId()
	b.addMember(t, org, bob, store.RoleMember)
	b.addMember(t, org, carol, store.RoleAdmin)
	transfer := func(by, to *testenv.User) error {
		_, err := b.orgs(by.Token).TransferOwnership(b.ctx, connect.NewRequest(&orgv1.TransferOwnershipRequest{OrganizationId: org, UserId: to.ID.String()}))
		return err
	}

	t.Run("refusals", func(t *testing.T) {
		requireOrgCode(t, transfer(carol, bob), connect.CodePermissionDenied, "owner")
		requireOrgCode(t, transfer(alice, outsider), connect.CodeNotFound, "member not found")
		requireOrgCode(t, transfer(alice, alice), connect.CodeInvalidArgument, "user_id")
		require.Empty(t, b.events(t, "organization.ownership_transferred"))
	})

	t.Run("the target becomes the owner and the previous owner an admin", func(t *testing.T) {
		require.NoError(t, transfer(alice, bob))
		require.Equal(t, map[string]orgv1.Role{
			alice.Email: orgv1.Role_ROLE_ADMIN, bob.Email: orgv1.Role_ROLE_OWNER, carol.Email: orgv1.Role_ROLE_ADMIN,
		}, b.members(t, alice.Token, org))
		e := b.requireOneEvent(t, "organization.ownership_transferred", org, alice.Email)
		require.Equal(t, alice.ID.String(), e.Metadata["from"])
		require.Equal(t, bob.ID.String(), e.Metadata["to"])

		_, err := b.orgs(alice.Token).DeleteOrganization(b.ctx, connect.NewRequest(&orgv1.DeleteOrganizationRequest{OrganizationId: org, ConfirmSlug: "acme"}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "owner")
		_, err = b.orgs(alice.Token).LeaveOrganization(b.ctx, connect.NewRequest(&orgv1.LeaveOrganizationRequest{OrganizationId: org}))
		require.NoError(t, err, "the previous owner may leave now")
	})

	t.Run("of two transfers racing, one wins and the organization keeps one owner", func(t *testing.T) {
		dave := b.env.NewUser(t, "dave@example.com")
		b.addMember(t, org, dave, store.RoleMember)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, to := range []*testenv.User{carol, dave} {
			wg.Go(func() { errs[i] = transfer(bob, to) })
		}
		wg.Wait()
		var won int
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				requireOrgCode(t, err, connect.CodePermissionDenied, "owner")
			}
		}
		require.Equal(t, 1, won, "errors: %v", errs)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM memberships WHERE organization_id = $1 AND role = 4`, org))
		require.Equal(t, orgv1.Role_ROLE_ADMIN, b.members(t, carol.Token, org)[bob.Email])
	})
}

func TestOrganizationCallersCannotReachAnotherTenant(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	carol := b.env.NewUser(t, "carol@example.com")
	mallory := b.env.NewUser(t, "mallory@example.com")
	orgA := b.createOrg(t, alice, "Acme", "").GetId()
	b.addMember(t, orgA, carol, store.RoleMember)
	orgB := b.createOrg(t, mallory, "Evil", "").GetId()
	inv, err := b.invitations(alice.Token).CreateInvitation(b.ctx, connect.NewRequest(&orgv1.CreateInvitationRequest{
		OrganizationId: orgA, Email: "dave@example.com", Role: orgv1.Role_ROLE_MEMBER,
	}))
	require.NoError(t, err)
	invID := inv.Msg.GetInvitation().GetId()
	orgs, invitations := b.orgs(mallory.Token), b.invitations(mallory.Token)

	t.Run("naming the other organization is refused", func(t *testing.T) {
		_, err := orgs.GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: orgA}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
		_, err = orgs.RenameOrganization(b.ctx, connect.NewRequest(&orgv1.RenameOrganizationRequest{OrganizationId: orgA, Name: "Pwned"}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
		_, err = orgs.ListMembers(b.ctx, connect.NewRequest(&orgv1.ListMembersRequest{OrganizationId: orgA}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
		_, err = invitations.ListInvitations(b.ctx, connect.NewRequest(&orgv1.ListInvitationsRequest{OrganizationId: orgA}))
		requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
	})

	t.Run("the other organization's ids are not found from one's own", func(t *testing.T) {
		_, err := orgs.ChangeMemberRole(b.ctx, connect.NewRequest(&orgv1.ChangeMemberRoleRequest{OrganizationId: orgB, UserId: carol.ID.String(), Role: orgv1.Role_ROLE_VIEWER}))
		requireOrgCode(t, err, connect.CodeNotFound, "member not found")
		_, err = orgs.RemoveMember(b.ctx, connect.NewRequest(&orgv1.RemoveMemberRequest{OrganizationId: orgB, UserId: carol.ID.String()}))
		requireOrgCode(t, err, connect.CodeNotFound, "member not found")
		_, err = orgs.TransferOwnership(b.ctx, connect.NewRequest(&orgv1.TransferOwnershipRequest{OrganizationId: orgB, UserId: carol.ID.String()}))
		requireOrgCode(t, err, connect.CodeNotFound, "member not found")
		_, err = invitations.RevokeInvitation(b.ctx, connect.NewRequest(&orgv1.RevokeInvitationRequest{OrganizationId: orgB, InvitationId: invID}))
		requireOrgCode(t, err, connect.CodeNotFound, "invitation not found")
	})

	got, err := b.orgs(alice.Token).GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: orgA}))
	require.NoError(t, err)
	require.Equal(t, "Acme", got.Msg.GetOrganization().GetName())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, b.members(t, alice.Token, orgA)[carol.Email])
	list, err := b.invitations(alice.Token).ListInvitations(b.ctx, connect.NewRequest(&orgv1.ListInvitationsRequest{OrganizationId: orgA}))
	require.NoError(t, err)
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_PENDING, list.Msg.GetInvitations()[0].GetState())
	require.Zero(t, b.count(t, `SELECT count(*) FROM activity_events WHERE actor_email = $1 AND event_type <> 'organization.created'`, mallory.Email),
		"nothing mallory tried was recorded as done")
}
