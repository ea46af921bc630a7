package api_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	"skypanel/shared/gen/go/skypanel/admin/v1/adminv1connect"
	"skypanel/shared/gen/go/skypanel/apitoken/v1/apitokenv1connect"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

// tenancy is what the API token, activity and admin tests work with: a running control plane
// and two organizations. A has an owner, an admin and a viewer; B an owner and a viewer.
type tenancy struct {
	env        *testenv.Env
	ctx        context.Context
	orgA, orgB uuid.UUID
	ownerA     *testenv.User
	adminA     *testenv.User
	viewerA    *testenv.User
	ownerB     *testenv.User
	viewerB    *testenv.User
}

func setupTenancy(t *testing.T, opts ...testenv.Option) *tenancy {
	t.Helper()
	t.Parallel()
	env := testenv.Start(t, opts...)
	f := &tenancy{env: env, ctx: t.Context()}
	f.ownerA, f.ownerB = f.newUser(t, "owner-a"), f.newUser(t, "owner-b")
	f.orgA, f.orgB = env.NewOrg(t, f.ownerA, "Org A"), env.NewOrg(t, f.ownerB, "Org B")
	f.adminA, f.viewerA, f.viewerB = f.newUser(t, "admin-a"), f.newUser(t, "viewer-a"), f.newUser(t, "viewer-b")
	f.addMember(t, f.orgA, f.adminA, store.RoleAdmin)
	f.addMember(t, f.orgA, f.viewerA, store.RoleViewer)
	f.addMember(t, f.orgB, f.viewerB, store.RoleViewer)
	return f
}

func (f *tenancy) newUser(t *testing.T, name string) *testenv.User {
	t.Helper()
	return f.env.NewUser(t, fmt.Sprintf("%s-%s@example.com", name, uuid.NewString()[:8]))
}

// addMember puts u in the organization; people join through invitations, which have their
// own tests, so these take the short way.
func (f *tenancy) addMember(t *testing.T, org uuid.UUID, u *testenv.User, role store.Role) {
	t.Helper()
	require.NoError(t, f.env.Store.AddMember(f.ctx, org, u.ID, role))
}

func (f *tenancy) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := f.env.Store.Pool().Exec(f.ctx, sql, args...)
	require.NoError(t, err)
}

func (f *tenancy) activity(token string) activityv1connect.ActivityServiceClient {
	return testenv.Client(f.env, activityv1connect.NewActivityServiceClient, token)
}

func (f *tenancy) tokens(token string) apitokenv1connect.APITokenServiceClient {
	return testenv.Client(f.env, apitokenv1connect.NewAPITokenServiceClient, token)
}

func (f *tenancy) admin(token string) adminv1connect.AdminServiceClient {
	return testenv.Client(f.env, adminv1connect.NewAdminServiceClient, token)
}

func (f *tenancy) orgs(token string) organizationv1connect.OrganizationServiceClient {
	return testenv.Client(f.env, organizationv1connect.NewOrganizationServiceClient, token)
}

// insert commits events straight to the log, in one transaction, and returns their ids.
func (f *tenancy) insert(t *testing.T, events ...store.ActivityEvent) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, f.env.Store.InTx(f.ctx, func(q *store.Queries) error {
		for _, e := range events {
			id, err := q.InsertActivity(f.ctx, e)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

// orgEv is an event of the organization, made by actor (nil for the system).
func orgEv(org uuid.UUID, eventType string, actor *testenv.User) store.ActivityEvent {
	e := store.ActivityEvent{OrganizationID: &org, ActorKind: store.ActorSystem, EventType: eventType,
		EntityType: "organization", EntityID: org.String(), Metadata: map[string]string{"k": eventType}}
	if actor != nil {
		id := actor.ID
		e.ActorKind, e.ActorUserID, e.ActorEmail = store.ActorUser, &id, actor.Email
	}
	return e
}

func (f *tenancy) listActivity(t *testing.T, token string, req *activityv1.ListActivityRequest) *activityv1.ListActivityResponse {
	t.Helper()
	resp, err := f.activity(token).ListActivity(f.ctx, connect.NewRequest(req))
	require.NoError(t, err)
	return resp.Msg
}

func eventIDs(events []*activityv1.Event) []int64 {
	ids := make([]int64, 0, len(events))
	for _, e := range events {
		id, err := strconv.ParseInt(e.GetId(), 10, 64)
		if err != nil {
			panic(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func reversed(ids []int64) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[len(ids)-1-i] = id
	}
	return out
}

func requireActivityCode(t *testing.T, err error, code connect.Code, msgContains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, connect.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), msgContains)
}

// liveStream reads a StreamActivity stream in the background, so tests can wait for its
// messages with a deadline.
type liveStream struct {
	msgs chan *activityv1.StreamActivityResponse
	done chan struct{}
	err  error // set before done closes
}

// openStream opens a stream and waits for its first message, the keepalive that says it is
// live. It returns the stream's error when it fails to open.
func (f *tenancy) openStream(t *testing.T, token string, org uuid.UUID, filter *activityv1.Filter) (*liveStream, error) {
	t.Helper()
	return f.openStreamCtx(t, f.ctx, token, org, filter)
}

// openStreamCtx is openStream with the stream's context.
func (f *tenancy) openStreamCtx(t *testing.T, ctx context.Context, token string, org uuid.UUID, filter *activityv1.Filter) (*liveStream, error) {
	t.Helper()
	stream, err := f.activity(token).StreamActivity(ctx, connect.NewRequest(&activityv1.StreamActivityRequest{
		OrganizationId: org.String(), Filter: filter,
	}))
	if err != nil {
		return nil, err
	}
	s := &liveStream{msgs: make(chan *activityv1.StreamActivityResponse, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer stream.Close()
		for stream.Receive() {
			s.msgs <- proto.Clone(stream.Msg()).(*activityv1.StreamActivityResponse)
		}
		s.err = stream.Err()
	}()
	select {
	case m := <-s.msgs:
		require.Nil(t, m.GetEvent(), "the first message is the keepalive that says the stream is live")
		return s, nil
	case <-s.done:
		require.Error(t, s.err, "the stream ended before it was live")
		return nil, s.err
	case <-time.After(10 * time.Second):
		t.Fatal("stream not live within 10s")
	}
	return nil, nil
}

// until returns the events the stream sends up to and including the first one for which
// want is true, skipping keepalives; it fails the test if that event does not arrive within
// 10 s. A stream may start with events committed just before it went live, so tests look for
// the event they caused rather than take the first.
func (s *liveStream) until(t *testing.T, want func(*activityv1.Event) bool) []*activityv1.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var got []*activityv1.Event
	for {
		select {
		case m := <-s.msgs:
			if e := m.GetEvent(); e != nil {
				got = append(got, e)
				if want(e) {
					return got
				}
			}
		case <-s.done:
			t.Fatalf("the stream ended: %v", s.err)
		case <-deadline:
			t.Fatal("the event did not arrive within 10s")
		}
	}
}

// untilID is until the event with this id.
func (s *liveStream) untilID(t *testing.T, id int64) []*activityv1.Event {
	t.Helper()
	want := strconv.FormatInt(id, 10)
	return s.until(t, func(e *activityv1.Event) bool { return e.GetId() == want })
}

func requireAllOf(t *testing.T, org uuid.UUID, events []*activityv1.Event) {
	t.Helper()
	for _, e := range events {
		require.Equal(t, org.String(), e.GetOrganizationId(), "event %s (%s) of another organization", e.GetId(), e.GetEventType())
	}
}

func TestActivityListShowsTheOrganizationsEventsNewestFirst(t *testing.T) {
	f := setupTenancy(t)
	since := time.Now().Add(-time.Minute)
	idsA := f.insert(t, orgEv(f.orgA, "test.one", f.ownerA), orgEv(f.orgA, "test.two", nil))
	f.insert(t, orgEv(f.orgB, "test.one", f.ownerB))

	resp := f.listActivity(t, f.viewerA.Token, &activityv1.ListActivityRequest{
		OrganizationId: f.orgA.String(), Filter: &activityv1.Filter{EventTypes: []string{"test."}},
	})
	require.Equal(t, reversed(idsA), eventIDs(resp.GetEvents()), "only A's events, newest first")
	require.Empty(t, resp.GetNextPageToken())

	e := resp.GetEvents()[1]
	require.Equal(t, strconv.FormatInt(idsA[0], 10), e.GetId())
	require.Equal(t, f.orgA.String(), e.GetOrganizationId())
	require.Equal(t, activityv1.ActorKind_ACTOR_KIND_USER, e.GetActorKind())
	require.Equal(t, f.ownerA.ID.String(), e.GetActorUserId())
	require.Equal(t, f.ownerA.Email, e.GetActorEmail())
	require.Empty(t, e.GetActorTokenId())
	require.Equal(t, "test.one", e.GetEventType())
	require.Equal(t, "organization", e.GetEntityType())
	require.Equal(t, f.orgA.String(), e.GetEntityId())
	require.Equal(t, map[string]string{"k": "test.one"}, e.GetMetadata())
	require.WithinDuration(t, time.Now(), e.GetCreatedAt().AsTime(), time.Minute)
	require.True(t, e.GetCreatedAt().AsTime().After(since))
	require.Equal(t, activityv1.ActorKind_ACTOR_KIND_SYSTEM, resp.GetEvents()[0].GetActorKind())

	// Changes made through the API are there too, with who made them.
	all := f.listActivity(t, f.viewerA.Token, &activityv1.ListActivityRequest{OrganizationId: f.orgA.String()})
	created := all.GetEvents()[len(all.GetEvents())-1]
	require.Equal(t, "organization.created", created.GetEventType())
	require.Equal(t, f.ownerA.Email, created.GetActorEmail())
	require.NotEmpty(t, created.GetIp())
}

func TestActivityListPaginates(t *testing.T) {
	f := setupTenancy(t)
	var evs []store.ActivityEvent
	for i := range 7 {
		evs = append(evs, orgEv(f.orgA, fmt.Sprintf("page.e%d", i), nil))
	}
	ids := f.insert(t, evs...)
	filter := &activityv1.Filter{EventTypes: []string{"page."}}

	var got []int64
	token := ""
	pages := 0
	for {
		resp := f.listActivity(t, f.viewerA.Token, &activityv1.ListActivityRequest{
			OrganizationId: f.orgA.String(), Filter: filter, PageSize: 3, PageToken: token,
		})
		pages++
		require.LessOrEqual(t, len(resp.GetEvents()), 3)
		got = append(got, eventIDs(resp.GetEvents())...)
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
		require.Less(t, pages, 10, "pagination does not end")
	}
	require.Equal(t, 3, pages)
	require.Equal(t, reversed(ids), got, "every event once, newest first")

	t.Run("page_size defaults to 50", func(t *testing.T) {
		var many []store.ActivityEvent
		for range 55 {
			many = append(many, orgEv(f.orgA, "bulk.e", nil))
		}
		f.insert(t, many...)
		resp := f.listActivity(t, f.viewerA.Token, &activityv1.ListActivityRequest{OrganizationId: f.orgA.String()})
		require.Len(t, resp.GetEvents(), 50)
		require.NotEmpty(t, resp.GetNextPageToken())
	})

	t.Run("a made-up page token is invalid", func(t *testing.T) {
		for _, bad := range []string{"garbage", "djE6YWJj" /* v1:abc */, "!!"} {
			_, err := f.activity(f.viewerA.Token).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{
				OrganizationId: f.orgA.String(), PageToken: bad,
			}))
			requireActivityCode(t, err, connect.CodeInvalidArgument, "page_token")
		}
	})

	t.Run("page_size above 200 is refused", func(t *testing.T) {
		_, err := f.activity(f.viewerA.Token).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{
			OrganizationId: f.orgA.String(), PageSize: 201,
		}))
		requireActivityCode(t, err, connect.CodeInvalidArgument, "page_size")
	})
}

func TestActivityListFilters(t *testing.T) {
	f := setupTenancy(t)
	byOwner := f.insert(t, orgEv(f.orgA, "flt.member.added", f.ownerA))[0]
	byAdmin := f.insert(t, orgEv(f.orgA, "flt.member.removed", f.adminA))[0]
	token := orgEv(f.orgA, "flt.token.created", nil)
	token.EntityType, token.EntityID = "api_token", "tok-1"
	tokenEv := f.insert(t, token)[0]
	underscore := f.insert(t, orgEv(f.orgA, "flt_member.x", nil))[0]
	old := f.insert(t, orgEv(f.orgA, "flt.old", nil))[0]
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	f.exec(t, `UPDATE activity_events SET created_at = $2 WHERE id = $1`, old, twoHoursAgo)

	for _, tc := range []struct {
		name   string
		filter *activityv1.Filter
		want   []int64
	}{
		{"an exact event type", &activityv1.Filter{EventTypes: []string{"flt.member.added"}}, []int64{byOwner}},
		{"an event type prefix ending in a dot",
			&activityv1.Filter{EventTypes: []string{"flt.member."}}, []int64{byAdmin, byOwner}},
		{"several event types", &activityv1.Filter{EventTypes: []string{"flt.member.added", "flt.token."}}, []int64{tokenEv, byOwner}},
		{"an underscore in a prefix matches only an underscore",
			&activityv1.Filter{EventTypes: []string{"flt_member."}}, []int64{underscore}},
		{"a type without the dot is not a prefix", &activityv1.Filter{EventTypes: []string{"flt.member"}}, nil},
		{"the actor", &activityv1.Filter{EventTypes: []string{"flt."}, ActorUserId: f.adminA.ID.String()}, []int64{byAdmin}},
		{"the entity", &activityv1.Filter{EntityType: "api_token", EntityId: "tok-1"}, []int64{tokenEv}},
		{"since", &activityv1.Filter{EventTypes: []string{"flt."}, Since: timestamppb.New(time.Now().Add(-time.Hour))},
			[]int64{tokenEv, byAdmin, byOwner}},
		{"until", &activityv1.Filter{EventTypes: []string{"flt."}, Until: timestamppb.New(time.Now().Add(-time.Hour))},
			[]int64{old}},
		{"since and until", &activityv1.Filter{
			EventTypes: []string{"flt.old"},
			Since:      timestamppb.New(twoHoursAgo), Until: timestamppb.New(twoHoursAgo.Add(time.Second)),
		}, []int64{old}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.listActivity(t, f.viewerA.Token, &activityv1.ListActivityRequest{OrganizationId: f.orgA.String(), Filter: tc.filter})
			require.Equal(t, tc.want, nilIfEmpty(eventIDs(resp.GetEvents())))
		})
	}

	t.Run("until before since is refused", func(t *testing.T) {
		_, err := f.activity(f.viewerA.Token).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{
			OrganizationId: f.orgA.String(),
			Filter:         &activityv1.Filter{Since: timestamppb.Now(), Until: timestamppb.New(time.Now().Add(-time.Hour))},
		}))
		requireActivityCode(t, err, connect.CodeInvalidArgument, "filter.until")
	})
	t.Run("a malformed event type is refused", func(t *testing.T) {
		_, err := f.activity(f.viewerA.Token).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{
			OrganizationId: f.orgA.String(), Filter: &activityv1.Filter{EventTypes: []string{"%"}},
		}))
		requireActivityCode(t, err, connect.CodeInvalidArgument, "event_types")
	})
}

func nilIfEmpty(ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func TestActivityListRefusesOtherOrganizations(t *testing.T) {
	f := setupTenancy(t)
	_, err := f.activity(f.viewerB.Token).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{OrganizationId: f.orgA.String()}))
	requireActivityCode(t, err, connect.CodePermissionDenied, "not a member")
}

func TestActivityStreamDeliversTheOrganizationsNewEventsLive(t *testing.T) {
	f := setupTenancy(t)
	stream, err := f.openStream(t, f.viewerA.Token, f.orgA, nil)
	require.NoError(t, err)

	// A change made through the API arrives, with who made it.
	_, err = f.orgs(f.ownerA.Token).RenameOrganization(f.ctx, connect.NewRequest(&orgv1.RenameOrganizationRequest{
		OrganizationId: f.orgA.String(), Name: "Org A renamed",
	}))
	require.NoError(t, err)
	got := stream.until(t, func(e *activityv1.Event) bool { return e.GetEventType() == "organization.renamed" })
	requireAllOf(t, f.orgA, got)
	e := got[len(got)-1]
	require.Equal(t, f.ownerA.Email, e.GetActorEmail())
	require.Equal(t, f.orgA.String(), e.GetEntityId())

	// Other organizations' events, and platform-wide ones, never arrive.
	f.insert(t, orgEv(f.orgB, "stream.b", f.ownerB))
	f.insert(t, store.ActivityEvent{ActorKind: store.ActorSystem, EventType: "stream.platform"})
	marker := f.insert(t, orgEv(f.orgA, "stream.a", nil))[0]
	got = stream.untilID(t, marker)
	requireAllOf(t, f.orgA, got)
	require.Len(t, got, 1, "nothing between the rename and the marker")
}

func TestActivityStreamAppliesTheFilter(t *testing.T) {
	f := setupTenancy(t)
	stream, err := f.openStream(t, f.viewerA.Token, f.orgA, &activityv1.Filter{
		EventTypes: []string{"apitoken."},
		// Live streams ignore time bounds: this one would otherwise exclude everything.
		Until: timestamppb.New(time.Now().Add(-time.Hour)),
	})
	require.NoError(t, err)

	f.insert(t, orgEv(f.orgA, "organization.renamed", nil))
	resp, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(f.orgA, "ci", store.RoleViewer)))
	require.NoError(t, err)
	got := stream.until(t, func(e *activityv1.Event) bool { return e.GetEntityId() == resp.Msg.GetToken().GetId() })
	for _, e := range got {
		require.True(t, strings.HasPrefix(e.GetEventType(), "apitoken."), "unfiltered event %s", e.GetEventType())
	}
	require.Equal(t, "apitoken.created", got[len(got)-1].GetEventType())
}

func TestActivityStreamRefusesAViewerOfAnotherOrganization(t *testing.T) {
	f := setupTenancy(t)
	_, err := f.openStream(t, f.viewerB.Token, f.orgA, nil)
	requireActivityCode(t, err, connect.CodePermissionDenied, "not a member")
}

func TestActivityStreamWorksWithAnAPIToken(t *testing.T) {
	f := setupTenancy(t)
	secret := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
	stream, err := f.openStream(t, secret, f.orgA, nil)
	require.NoError(t, err)
	id := f.insert(t, orgEv(f.orgA, "stream.token", nil))[0]
	requireAllOf(t, f.orgA, stream.untilID(t, id))

	_, err = f.openStream(t, secret, f.orgB, nil)
	requireActivityCode(t, err, connect.CodePermissionDenied, "another organization")
}

func TestActivityStreamEndsWhenTheServerShutsDown(t *testing.T) {
	// Registered before the control plane starts, so it runs after the control plane stopped.
	var stream *liveStream
	t.Cleanup(func() {
		if stream == nil {
			return // the test failed before opening it
		}
		select {
		case <-stream.done:
			require.NoError(t, stream.err, "the stream ends cleanly")
		case <-time.After(10 * time.Second):
			t.Error("stream still open 10s after the control plane stopped")
		}
	})
	// A shutdown timeout longer than testenv waits: an open stream holding shutdown fails it.
	f := setupTenancy(t, testenv.WithConfig(func(c *config.Config) { c.ShutdownTimeout = time.Hour }))
	var err error
	// Not the test's context, which ends before the control plane stops.
	stream, err = f.openStreamCtx(t, context.Background(), f.viewerA.Token, f.orgA, nil)
	require.NoError(t, err)
}
