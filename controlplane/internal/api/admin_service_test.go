package api_test

import (
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	adminv1 "skypanel/shared/gen/go/skypanel/admin/v1"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
)

// platformAdmin makes a fresh platform admin.
func (f *tenancy) platformAdmin(t *testing.T) *testenv.User {
	t.Helper()
	u := f.newUser(t, "platform")
	f.env.MakePlatformAdmin(t, u)
	return u
}

func (f *tenancy) whoAmIErr(token string) error {
	_, err := testenv.Client(f.env, authv1connect.NewAuthServiceClient, token).WhoAmI(f.ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
	return err
}

// adminEvents lists platform-wide events of one type, newest first.
func (f *tenancy) adminEvents(t *testing.T, admin *testenv.User, eventType string) []*activityv1.Event {
	t.Helper()
	resp, err := f.admin(admin.Token).ListActivity(f.ctx, connect.NewRequest(&adminv1.ListActivityRequest{
		Filter: &activityv1.Filter{EventTypes: []string{eventType}},
	}))
	require.NoError(t, err)
	return resp.Msg.GetEvents()
}

// allUsers pages through ListUsers and returns the emails in order.
func (f *tenancy) allUsers(t *testing.T, admin *testenv.User, query string, pageSize int32) []string {
	t.Helper()
	var emails []string
	token := ""
	limit := int(pageSize)
	if limit == 0 {
		limit = store.DefaultPageSize
	}
	for range 100 {
		resp, err := f.admin(admin.Token).ListUsers(f.ctx, connect.NewRequest(&adminv1.ListUsersRequest{
			Query: query, PageSize: pageSize, PageToken: token,
		}))
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.Msg.GetUsers()), limit)
		for _, u := range resp.Msg.GetUsers() {
			emails = append(emails, u.GetEmail())
		}
		if token = resp.Msg.GetNextPageToken(); token == "" {
			return emails
		}
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestAdminListUsersSearchesAndPaginates(t *testing.T) {
	f := setupTenancy(t)
	admin := f.platformAdmin(t)
	for _, email := range []string{"100%real@example.com", "under_score@example.com", "underXscore@example.com", "MiXed.Case@example.com"} {
		f.env.NewUser(t, email)
	}
	// Users created in one statement share created_at: the id breaks the tie.
	f.exec(t, `INSERT INTO users (email, display_name, password_hash, created_at)
		SELECT 'same-' || i || '@example.com', 'Same Time', 'x', '2020-01-01T00:00:00Z' FROM generate_series(1, 5) i`)

	everyone := f.allUsers(t, admin, "", 0)
	require.Len(t, everyone, 6+4+5, "the tenancy's six, four here and five at the same instant")
	require.Equal(t, "mixed.case@example.com", everyone[0], "newest first")
	for _, size := range []int32{1, 2, 4} {
		require.Equal(t, everyone, f.allUsers(t, admin, "", size), "page size %d", size)
	}

	require.Equal(t, []string{"100%real@example.com"}, f.allUsers(t, admin, "%", 0), "%% matches itself")
	require.Equal(t, []string{"under_score@example.com"}, f.allUsers(t, admin, "_", 0), "_ matches itself")
	require.Equal(t, []string{"mixed.case@example.com"}, f.allUsers(t, admin, "MIXED", 0), "any case")
	require.Len(t, f.allUsers(t, admin, "same time", 2), 5, "the display name matches too")

	resp, err := f.admin(admin.Token).ListUsers(f.ctx, connect.NewRequest(&adminv1.ListUsersRequest{Query: "100%"}))
	require.NoError(t, err)
	u := resp.Msg.GetUsers()[0]
	require.NotEmpty(t, u.GetId())
	require.Equal(t, "100%real", u.GetDisplayName())
	require.False(t, u.GetDisabled())
	require.NotNil(t, u.GetCreatedAt())

	_, err = f.admin(admin.Token).ListUsers(f.ctx, connect.NewRequest(&adminv1.ListUsersRequest{PageToken: "bm9wZQ"}))
	requireActivityCode(t, err, connect.CodeInvalidArgument, "page_token")
	_, err = f.admin(f.ownerA.Token).ListUsers(f.ctx, connect.NewRequest(&adminv1.ListUsersRequest{}))
	requireActivityCode(t, err, connect.CodePermissionDenied, "platform admins only")
}

func TestAdminListOrganizationsShowsOwnersAndMemberCounts(t *testing.T) {
	f := setupTenancy(t)
	admin := f.platformAdmin(t)
	orgC := f.env.NewOrg(t, admin, "Zebra_Works")

	list := func(query string, size int32) []*adminv1.OrganizationSummary {
		var out []*adminv1.OrganizationSummary
		token := ""
		for range 100 {
			resp, err := f.admin(admin.Token).ListOrganizations(f.ctx, connect.NewRequest(&adminv1.ListOrganizationsRequest{
				Query: query, PageSize: size, PageToken: token,
			}))
			require.NoError(t, err)
			out = append(out, resp.Msg.GetOrganizations()...)
			if token = resp.Msg.GetNextPageToken(); token == "" {
				return out
			}
		}
		t.Fatal("pagination does not end")
		return nil
	}
	all := list("", 0)
	require.Len(t, all, 3)
	require.Equal(t, []string{orgC.String(), f.orgB.String(), f.orgA.String()},
		[]string{all[0].GetId(), all[1].GetId(), all[2].GetId()}, "newest first")
	a := all[2]
	require.Equal(t, "Org A", a.GetName())
	require.NotEmpty(t, a.GetSlug())
	require.Equal(t, f.ownerA.Email, a.GetOwnerEmail())
	require.EqualValues(t, 3, a.GetMemberCount(), "owner, admin and viewer")
	require.EqualValues(t, 2, all[1].GetMemberCount())
	require.NotNil(t, a.GetCreatedAt())
	require.Equal(t, all, list("", 1), "one at a time, the same")

	byName := list("zebra_", 0)
	require.Len(t, byName, 1)
	require.Equal(t, orgC.String(), byName[0].GetId())
	require.Equal(t, admin.Email, byName[0].GetOwnerEmail())
	require.Empty(t, list("org_", 0), "_ matches itself")
	bySlug := list(a.GetSlug(), 0)
	require.Len(t, bySlug, 1)
	require.Equal(t, f.orgA.String(), bySlug[0].GetId())

	_, err := f.admin(admin.Token).ListOrganizations(f.ctx, connect.NewRequest(&adminv1.ListOrganizationsRequest{PageToken: "djE6MTox"}))
	requireActivityCode(t, err, connect.CodeInvalidArgument, "page_token")
}

func TestAdminSetUserDisabledEndsSessionsAndTokens(t *testing.T) {
	f := setupTenancy(t)
	admin := f.platformAdmin(t)
	target := f.adminA
	apiToken := f.createToken(t, target, f.orgA, store.RoleViewer)
	require.NoError(t, f.whoAmIErr(target.Token))

	set := func(disabled bool) (*authv1.User, error) {
		resp, err := f.admin(admin.Token).SetUserDisabled(f.ctx, connect.NewRequest(&adminv1.SetUserDisabledRequest{
			UserId: target.ID.String(), Disabled: disabled,
		}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetUser(), nil
	}
	u, err := set(true)
	require.NoError(t, err)
	require.True(t, u.GetDisabled())
	requireActivityCode(t, f.whoAmIErr(target.Token), connect.CodeUnauthenticated, "")
	requireActivityCode(t, f.listActivityErr(apiToken, f.orgA), connect.CodeUnauthenticated, "")
	var liveSessions int
	require.NoError(t, f.env.Store.Pool().QueryRow(f.ctx,
		`SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, target.ID).Scan(&liveSessions))
	require.Zero(t, liveSessions, "every session is revoked, not just refused")

	_, err = set(true)
	require.NoError(t, err, "disabling twice is fine")
	evs := f.adminEvents(t, admin, "admin.user.disabled")
	require.Len(t, evs, 1, "and logged once")
	require.Empty(t, evs[0].GetOrganizationId())
	require.Equal(t, admin.Email, evs[0].GetActorEmail())
	require.Equal(t, "user", evs[0].GetEntityType())
	require.Equal(t, target.ID.String(), evs[0].GetEntityId())
	require.Equal(t, target.Email, evs[0].GetMetadata()["email"])

	u, err = set(false)
	require.NoError(t, err)
	require.False(t, u.GetDisabled())
	require.NoError(t, f.listActivityErr(apiToken, f.orgA), "API tokens work again")
	requireActivityCode(t, f.whoAmIErr(target.Token), connect.CodeUnauthenticated, "")
	require.NoError(t, f.whoAmIErr(f.env.SessionToken(t, target.ID)), "new sessions work")
	require.Len(t, f.adminEvents(t, admin, "admin.user.enabled"), 1)

	_, err = f.admin(admin.Token).SetUserDisabled(f.ctx, connect.NewRequest(&adminv1.SetUserDisabledRequest{UserId: admin.ID.String(), Disabled: true}))
	requireActivityCode(t, err, connect.CodeFailedPrecondition, "your own account")
	require.NoError(t, f.whoAmIErr(admin.Token))
	_, err = f.admin(admin.Token).SetUserDisabled(f.ctx, connect.NewRequest(&adminv1.SetUserDisabledRequest{UserId: uuid.NewString(), Disabled: true}))
	requireActivityCode(t, err, connect.CodeNotFound, "user not found")
}

func TestAdminSetPlatformAdminGrantsAndRevokes(t *testing.T) {
	f := setupTenancy(t)
	admin := f.platformAdmin(t)
	target := f.viewerA
	set := func(as *testenv.User, id uuid.UUID, grant bool) (*authv1.User, error) {
		resp, err := f.admin(as.Token).SetPlatformAdmin(f.ctx, connect.NewRequest(&adminv1.SetPlatformAdminRequest{
			UserId: id.String(), PlatformAdmin: grant,
		}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetUser(), nil
	}
	listUsersErr := func(u *testenv.User) error {
		_, err := f.admin(u.Token).ListUsers(f.ctx, connect.NewRequest(&adminv1.ListUsersRequest{}))
		return err
	}
	requireActivityCode(t, listUsersErr(target), connect.CodePermissionDenied, "")

	u, err := set(admin, target.ID, true)
	require.NoError(t, err)
	require.True(t, u.GetPlatformAdmin())
	require.NoError(t, listUsersErr(target))
	evs := f.adminEvents(t, admin, "admin.user.platform_admin_granted")
	require.Len(t, evs, 1)
	require.Equal(t, target.ID.String(), evs[0].GetEntityId())
	require.Empty(t, evs[0].GetOrganizationId())

	// The new admin may revoke the one who made them, but not themselves.
	_, err = set(target, target.ID, false)
	requireActivityCode(t, err, connect.CodeFailedPrecondition, "your own platform admin")
	u, err = set(target, admin.ID, false)
	require.NoError(t, err)
	require.False(t, u.GetPlatformAdmin())
	requireActivityCode(t, listUsersErr(admin), connect.CodePermissionDenied, "")
	evs = f.adminEvents(t, target, "admin.user.platform_admin_revoked")
	require.Len(t, evs, 1)
	require.Equal(t, admin.ID.String(), evs[0].GetEntityId())
	require.Equal(t, target.Email, evs[0].GetActorEmail())

	_, err = set(target, uuid.New(), true)
	requireActivityCode(t, err, connect.CodeNotFound, "user not found")
}

func TestAdminsRevokingEachOtherAtOnceLeaveOneAdmin(t *testing.T) {
	f := setupTenancy(t)
	a, b := f.platformAdmin(t), f.platformAdmin(t)
	for round := range 5 {
		f.exec(t, `UPDATE users SET platform_admin = true WHERE id = ANY($1)`, []uuid.UUID{a.ID, b.ID})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, pair := range [][2]*testenv.User{{a, b}, {b, a}} {
			wg.Go(func() {
				_, errs[i] = f.admin(pair[0].Token).SetPlatformAdmin(f.ctx, connect.NewRequest(&adminv1.SetPlatformAdminRequest{
					UserId: pair[1].ID.String(),
				}))
			})
		}
		wg.Wait()
		var admins int
		require.NoError(t, f.env.Store.Pool().QueryRow(f.ctx,
			`SELECT count(*) FROM users WHERE platform_admin AND id = ANY($1)`, []uuid.UUID{a.ID, b.ID}).Scan(&admins))
		require.Equal(t, 1, admins, "round %d: %v", round, errs)
		require.True(t, (errs[0] == nil) != (errs[1] == nil), "round %d: exactly one wins: %v", round, errs)
	}
}

func TestAdminListActivitySpansOrganizations(t *testing.T) {
	f := setupTenancy(t)
	admin := f.platformAdmin(t)
	a := f.insert(t, orgEv(f.orgA, "span.a", nil))[0]
	b := f.insert(t, orgEv(f.orgB, "span.b", nil))[0]
	platform := f.insert(t, store.ActivityEvent{ActorKind: store.ActorSystem, EventType: "span.platform"})[0]

	list := func(req *adminv1.ListActivityRequest) []int64 {
		resp, err := f.admin(admin.Token).ListActivity(f.ctx, connect.NewRequest(req))
		require.NoError(t, err)
		return eventIDs(resp.Msg.GetEvents())
	}
	span := &activityv1.Filter{EventTypes: []string{"span."}}
	require.Equal(t, []int64{platform, b, a}, list(&adminv1.ListActivityRequest{Filter: span}))
	require.Equal(t, []int64{b}, list(&adminv1.ListActivityRequest{OrganizationId: f.orgB.String(), Filter: span}))

	first := f.admin(admin.Token)
	resp, err := first.ListActivity(f.ctx, connect.NewRequest(&adminv1.ListActivityRequest{Filter: span, PageSize: 2}))
	require.NoError(t, err)
	require.Equal(t, []int64{platform, b}, eventIDs(resp.Msg.GetEvents()))
	require.Equal(t, []int64{a}, list(&adminv1.ListActivityRequest{Filter: span, PageSize: 2, PageToken: resp.Msg.GetNextPageToken()}))

	_, err = first.ListActivity(f.ctx, connect.NewRequest(&adminv1.ListActivityRequest{OrganizationId: "not-a-uuid"}))
	requireActivityCode(t, err, connect.CodeInvalidArgument, "organization_id")
	_, err = f.admin(f.ownerA.Token).ListActivity(f.ctx, connect.NewRequest(&adminv1.ListActivityRequest{}))
	requireActivityCode(t, err, connect.CodePermissionDenied, "platform admins only")
}
