package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
)

func (b *orgBundle) invite(t *testing.T, by *testenv.User, org, email string, role orgv1.Role) (*orgv1.Invitation, error) {
	t.Helper()
	resp, err := b.invitations(by.Token).CreateInvitation(b.ctx, connect.NewRequest(&orgv1.CreateInvitationRequest{
		OrganizationId: org, Email: email, Role: role,
	}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetInvitation(), nil
}

// invitationLink waits for the invitation mail to an address and returns it with the token
// from its link.
func (b *orgBundle) invitationLink(t *testing.T, email string) (testenv.Mail, string) {
	t.Helper()
	m := b.env.Mail.WaitFor(t, email, "invited you")
	link := testenv.Link(t, m.Text, b.env.Config.PublicURL+"/invitations/accept?token=")
	u, err := url.Parse(link)
	require.NoError(t, err)
	token := u.Query().Get("token")
	require.NotEmpty(t, token, link)
	return m, token
}

func (b *orgBundle) getInvitation(token string) (*orgv1.Invitation, error) {
	resp, err := b.invitations("").GetInvitation(b.ctx, connect.NewRequest(&orgv1.GetInvitationRequest{Token: token}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetInvitation(), nil
}

func (b *orgBundle) accept(u *testenv.User, token string) (*orgv1.Organization, error) {
	resp, err := b.invitations(u.Token).AcceptInvitation(b.ctx, connect.NewRequest(&orgv1.AcceptInvitationRequest{Token: token}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetOrganization(), nil
}

func (b *orgBundle) decline(token string) error {
	_, err := b.invitations("").DeclineInvitation(b.ctx, connect.NewRequest(&orgv1.DeclineInvitationRequest{Token: token}))
	return err
}

func (b *orgBundle) listInvitations(t *testing.T, u *testenv.User, org string) []*orgv1.Invitation {
	t.Helper()
	resp, err := b.invitations(u.Token).ListInvitations(b.ctx, connect.NewRequest(&orgv1.ListInvitationsRequest{OrganizationId: org}))
	require.NoError(t, err)
	return resp.Msg.GetInvitations()
}

// queuedInvitationMails counts the mail jobs addressed to someone, sent or not.
func (b *orgBundle) queuedInvitationMails(t *testing.T, to string) int {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'mail.send' AND args->'message'->>'to' = $1`, to)
}

func TestInvitationSMTPRoundTrip(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme Rockets", "").GetId()

	inv, err := b.invite(t, alice, org, "Bob@Example.com", orgv1.Role_ROLE_MEMBER)
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", inv.GetEmail(), "emails are normalized")
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_PENDING, inv.GetState())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, inv.GetRole())
	require.Equal(t, "Acme Rockets", inv.GetOrganizationName())
	require.Equal(t, alice.Email, inv.GetInvitedByEmail())
	require.WithinDuration(t, inv.GetCreatedAt().AsTime().Add(b.env.Config.InvitationTTL), inv.GetExpiresAt().AsTime(), 5*time.Second)

	m, token := b.invitationLink(t, "bob@example.com")
	require.Equal(t, "alice@example.com invited you to Acme Rockets on SkyPanel", m.Subject)
	require.Contains(t, m.Text, "as a member")
	require.Contains(t, m.Text, "The link works until "+inv.GetExpiresAt().AsTime().UTC().Format("Mon, 2 Jan 2006 15:04 MST"))
	require.True(t, strings.HasPrefix(token, "spinv_"), token)
	require.NotContains(t, b.events(t, "invitation.created")[0].Metadata, "token", "the secret is not recorded")

	shown, err := b.getInvitation(token)
	require.NoError(t, err)
	require.Equal(t, "Acme Rockets", shown.GetOrganizationName())
	require.Equal(t, "bob@example.com", shown.GetEmail())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, shown.GetRole())
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_PENDING, shown.GetState())
	require.Equal(t, alice.Email, shown.GetInvitedByEmail())

	bob := b.env.NewUser(t, "bob@example.com")
	joined, err := b.accept(bob, token)
	require.NoError(t, err)
	require.Equal(t, org, joined.GetId())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, joined.GetRole())
	require.EqualValues(t, 2, joined.GetMemberCount())

	list, err := b.orgs(bob.Token).ListOrganizations(b.ctx, connect.NewRequest(&orgv1.ListOrganizationsRequest{}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetOrganizations(), 1)
	require.Equal(t, "Acme Rockets", list.Msg.GetOrganizations()[0].GetName())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, list.Msg.GetOrganizations()[0].GetRole())

	shown, err = b.getInvitation(token)
	require.NoError(t, err)
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_ACCEPTED, shown.GetState())
	_, err = b.accept(bob, token)
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "invitation was already accepted")

	created := b.requireOneEvent(t, "invitation.created", org, alice.Email)
	require.Equal(t, "invitation", created.EntityType)
	require.Equal(t, inv.GetId(), created.EntityID)
	require.Equal(t, map[string]string{"email": "bob@example.com", "role": "member"}, created.Metadata)
	accepted := b.requireOneEvent(t, "invitation.accepted", org, bob.Email)
	require.Equal(t, inv.GetId(), accepted.EntityID)
	require.Equal(t, bob.ID.String(), accepted.Metadata["user_id"])
	joinedEvent := b.requireOneEvent(t, "organization.member.joined", org, bob.Email)
	require.Equal(t, bob.ID.String(), joinedEvent.EntityID)
	require.Equal(t, "member", joinedEvent.Metadata["role"])
	require.Equal(t, inv.GetId(), joinedEvent.Metadata["invitation_id"])
}

func TestInvitationAcceptRequiresTheInvitedEmail(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	_, err := b.invite(t, alice, org, "carol@example.com", orgv1.Role_ROLE_VIEWER)
	require.NoError(t, err)
	_, token := b.invitationLink(t, "carol@example.com")

	mallory := b.env.NewUser(t, "mallory@example.com")
	_, err = b.accept(mallory, token)
	requireOrgCode(t, err, connect.CodePermissionDenied, "this invitation was sent to another email address")
	_, err = b.orgs(mallory.Token).GetOrganization(b.ctx, connect.NewRequest(&orgv1.GetOrganizationRequest{OrganizationId: org}))
	requireOrgCode(t, err, connect.CodePermissionDenied, "not a member")
	require.Empty(t, b.events(t, "invitation.accepted"))

	_, err = b.invitations("").AcceptInvitation(b.ctx, connect.NewRequest(&orgv1.AcceptInvitationRequest{Token: token}))
	requireOrgCode(t, err, connect.CodeUnauthenticated, "sign in")

	carol := b.env.NewUser(t, "carol@example.com")
	joined, err := b.accept(carol, token)
	require.NoError(t, err)
	require.Equal(t, orgv1.Role_ROLE_VIEWER, joined.GetRole())
}

func TestInvitationExpiredCannotBeAnsweredAndIsListedAsExpired(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	old, err := b.invite(t, alice, org, "dave@example.com", orgv1.Role_ROLE_MEMBER)
	require.NoError(t, err)
	_, token := b.invitationLink(t, "dave@example.com")
	b.exec(t, `UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, old.GetId())

	list := b.listInvitations(t, alice, org)
	require.Len(t, list, 1)
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_EXPIRED, list[0].GetState())
	shown, err := b.getInvitation(token)
	require.NoError(t, err)
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_EXPIRED, shown.GetState())

	dave := b.env.NewUser(t, "dave@example.com")
	_, err = b.accept(dave, token)
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "invitation expired")
	requireOrgCode(t, b.decline(token), connect.CodeFailedPrecondition, "invitation expired")
	_, err = b.invitations(alice.Token).RevokeInvitation(b.ctx, connect.NewRequest(&orgv1.RevokeInvitationRequest{OrganizationId: org, InvitationId: old.GetId()}))
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "only pending invitations")
	require.Empty(t, b.events(t, "invitation.accepted"))

	t.Run("the email can be invited again, and the old invitation is marked expired", func(t *testing.T) {
		fresh, err := b.invite(t, alice, org, "dave@example.com", orgv1.Role_ROLE_MEMBER)
		require.NoError(t, err)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM invitations WHERE id = $1 AND state = 'expired'`, old.GetId()))
		list := b.listInvitations(t, alice, org)
		require.Len(t, list, 2)
		require.Equal(t, fresh.GetId(), list[0].GetId(), "newest first")
		require.Equal(t, orgv1.InvitationState_INVITATION_STATE_PENDING, list[0].GetState())
		require.Equal(t, orgv1.InvitationState_INVITATION_STATE_EXPIRED, list[1].GetState())
	})
}

func TestInvitationDecline(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	inv, err := b.invite(t, alice, org, "erin@example.com", orgv1.Role_ROLE_MEMBER)
	require.NoError(t, err)
	_, token := b.invitationLink(t, "erin@example.com")

	require.NoError(t, b.decline(token), "declining needs no account")
	shown, err := b.getInvitation(token)
	require.NoError(t, err)
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_DECLINED, shown.GetState())
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_DECLINED, b.listInvitations(t, alice, org)[0].GetState())

	requireOrgCode(t, b.decline(token), connect.CodeFailedPrecondition, "invitation was already declined")
	erin := b.env.NewUser(t, "erin@example.com")
	_, err = b.accept(erin, token)
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "invitation was already declined")

	declined := b.requireOneEvent(t, "invitation.declined", org, "")
	require.Equal(t, inv.GetId(), declined.EntityID)
	require.Equal(t, "erin@example.com", declined.Metadata["email"])
}

func TestInvitationRevoke(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	admin := b.env.NewUser(t, "admin@example.com")
	member := b.env.NewUser(t, "member@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	b.addMember(t, org, admin, store.RoleAdmin)
	b.addMember(t, org, member, store.RoleMember)
	inv, err := b.invite(t, alice, org, "frank@example.com", orgv1.Role_ROLE_MEMBER)
	require.NoError(t, err)
	_, token := b.invitationLink(t, "frank@example.com")
	revoke := func(u *testenv.User, id string) error {
		_, err := b.invitations(u.Token).RevokeInvitation(b.ctx, connect.NewRequest(&orgv1.RevokeInvitationRequest{OrganizationId: org, InvitationId: id}))
		return err
	}

	require.Len(t, b.listInvitations(t, member, org), 1, "viewers and members see invitations")
	requireOrgCode(t, revoke(member, inv.GetId()), connect.CodePermissionDenied, "needs the admin role")
	requireOrgCode(t, revoke(admin, "8a0f4c9e-4b7e-4d6a-9a59-0a4b3f1f0c11"), connect.CodeNotFound, "invitation not found")

	require.NoError(t, revoke(admin, inv.GetId()))
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_REVOKED, b.listInvitations(t, alice, org)[0].GetState())
	requireOrgCode(t, revoke(admin, inv.GetId()), connect.CodeFailedPrecondition, "invitation is revoked: only pending invitations can be revoked")

	frank := b.env.NewUser(t, "frank@example.com")
	_, err = b.accept(frank, token)
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "invitation was already revoked")

	revoked := b.requireOneEvent(t, "invitation.revoked", org, admin.Email)
	require.Equal(t, inv.GetId(), revoked.EntityID)
	require.Equal(t, "frank@example.com", revoked.Metadata["email"])
}

func TestInvitationRefusalsLeaveNoActivityAndNoMail(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	admin := b.env.NewUser(t, "admin@example.com")
	member := b.env.NewUser(t, "member@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	b.addMember(t, org, admin, store.RoleAdmin)
	b.addMember(t, org, member, store.RoleMember)

	_, err := b.invite(t, admin, org, "bob@example.com", orgv1.Role_ROLE_MEMBER)
	require.NoError(t, err)
	b.env.Mail.WaitFor(t, "bob@example.com", "invited you")

	t.Run("a second pending invitation for one email", func(t *testing.T) {
		_, err := b.invite(t, alice, org, "BOB@example.com", orgv1.Role_ROLE_VIEWER)
		requireOrgCode(t, err, connect.CodeAlreadyExists, "email: bob@example.com already has a pending invitation")
	})
	t.Run("inviting a member", func(t *testing.T) {
		_, err := b.invite(t, alice, org, "member@example.com", orgv1.Role_ROLE_VIEWER)
		requireOrgCode(t, err, connect.CodeAlreadyExists, "email: member@example.com is already a member")
	})
	t.Run("an admin inviting an admin", func(t *testing.T) {
		_, err := b.invite(t, admin, org, "carol@example.com", orgv1.Role_ROLE_ADMIN)
		requireOrgCode(t, err, connect.CodePermissionDenied, "only the owner can invite admins")
	})
	t.Run("a member inviting anyone", func(t *testing.T) {
		_, err := b.invite(t, member, org, "carol@example.com", orgv1.Role_ROLE_VIEWER)
		requireOrgCode(t, err, connect.CodePermissionDenied, "needs the admin role")
	})
	t.Run("an invitation with no role", func(t *testing.T) {
		_, err := b.invite(t, alice, org, "carol@example.com", orgv1.Role_ROLE_UNSPECIFIED)
		requireOrgCode(t, err, connect.CodeInvalidArgument, "role")
	})

	require.Len(t, b.events(t, "invitation.created"), 1)
	require.Equal(t, 1, b.queuedInvitationMails(t, "bob@example.com"))
	require.Zero(t, b.queuedInvitationMails(t, "member@example.com"))
	require.Zero(t, b.queuedInvitationMails(t, "carol@example.com"))
	require.Len(t, b.listInvitations(t, alice, org), 1)

	// The owner may invite an admin; that mail arriving after the refusals shows none of them
	// left a mail behind in the queue.
	_, err = b.invite(t, alice, org, "carol@example.com", orgv1.Role_ROLE_ADMIN)
	require.NoError(t, err)
	m := b.env.Mail.WaitFor(t, "carol@example.com", "invited you")
	require.Contains(t, m.Text, "as an admin")
	require.Equal(t, 1, b.env.Mail.Count(t, "bob@example.com"))
	require.Equal(t, 1, b.env.Mail.Count(t, "carol@example.com"))
	require.Zero(t, b.env.Mail.Count(t, "member@example.com"))
}

func TestInvitationTokensThatAreMalformedOrUnknownAreNotFound(t *testing.T) {
	b := setupOrgs(t)
	someone := b.env.NewUser(t, "someone@example.com")
	unknown, _ := auth.NewToken(auth.KindInvitation)
	wrongKind, _ := auth.NewToken(auth.KindReset)
	for _, token := range []string{unknown, wrongKind, "spinv_not-a-real-token", unknown + "x"} {
		_, err := b.getInvitation(token)
		requireOrgCode(t, err, connect.CodeNotFound, "invitation not found")
		_, err = b.accept(someone, token)
		requireOrgCode(t, err, connect.CodeNotFound, "invitation not found")
		requireOrgCode(t, b.decline(token), connect.CodeNotFound, "invitation not found")
	}
}

func TestInvitationAcceptedByAnExistingMemberKeepsTheirRole(t *testing.T) {
	b := setupOrgs(t, testenv.WithMail())
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	_, err := b.invite(t, alice, org, "gina@example.com", orgv1.Role_ROLE_ADMIN)
	require.NoError(t, err)
	_, token := b.invitationLink(t, "gina@example.com")
	gina := b.env.NewUser(t, "gina@example.com")
	b.addMember(t, org, gina, store.RoleViewer) // joined some other way meanwhile

	joined, err := b.accept(gina, token)
	require.NoError(t, err, "accepting succeeds with the membership gina has")
	require.Equal(t, orgv1.Role_ROLE_VIEWER, joined.GetRole())
	require.Equal(t, orgv1.InvitationState_INVITATION_STATE_ACCEPTED, b.listInvitations(t, alice, org)[0].GetState())
	accepted := b.requireOneEvent(t, "invitation.accepted", org, gina.Email)
	require.Equal(t, "true", accepted.Metadata["already_member"])
	require.Empty(t, b.events(t, "organization.member.joined"))
}

func TestInvitationAnOrganizationHasAtMostFiftyPending(t *testing.T) {
	b := setupOrgs(t)
	alice := b.env.NewUser(t, "alice@example.com")
	org := b.createOrg(t, alice, "Acme", "").GetId()
	for i := range 50 {
		_, err := b.invite(t, alice, org, "guest"+string(rune('a'+i/26))+string(rune('a'+i%26))+"@example.com", orgv1.Role_ROLE_VIEWER)
		require.NoError(t, err, i)
	}
	_, err := b.invite(t, alice, org, "one-more@example.com", orgv1.Role_ROLE_VIEWER)
	requireOrgCode(t, err, connect.CodeFailedPrecondition, "50 pending invitations")
	require.Len(t, b.events(t, "invitation.created"), 50)

	// Answered or revoked invitations no longer count.
	first := b.listInvitations(t, alice, org)[0]
	_, err = b.invitations(alice.Token).RevokeInvitation(b.ctx, connect.NewRequest(&orgv1.RevokeInvitationRequest{OrganizationId: org, InvitationId: first.GetId()}))
	require.NoError(t, err)
	_, err = b.invite(t, alice, org, "one-more@example.com", orgv1.Role_ROLE_VIEWER)
	require.NoError(t, err)
}
