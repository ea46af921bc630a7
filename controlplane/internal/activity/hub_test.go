package activity_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/activity"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

// bundle is what a hub test works with: a store on a fresh database and a running hub.
type bundle struct {
	st   *store.Store
	hub  *activity.Hub
	stop context.CancelFunc
	done chan struct{}
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st := testenv.Store(t)
	hub := activity.NewHub(st, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	b := &bundle{st: st, hub: hub, stop: cancel, done: make(chan struct{})}
	go func() { defer close(b.done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-b.done })
	select {
	case <-hub.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("hub not listening within 20s")
	}
	return b
}

// insert commits events in one transaction and returns their ids.
func (b *bundle) insert(t *testing.T, events ...store.ActivityEvent) []int64 {
	t.Helper()
	var ids []int64
	err := b.st.InTx(context.Background(), func(q *store.Queries) error {
		for _, e := range events {
			id, err := q.InsertActivity(context.Background(), e)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

func ev(org uuid.UUID, eventType string) store.ActivityEvent {
	return store.ActivityEvent{OrganizationID: &org, ActorKind: store.ActorSystem, EventType: eventType,
		EntityType: "organization", EntityID: org.String()}
}

// next returns the subscription's next event, failing the test if none comes within 10 s.
func next(t *testing.T, sub *activity.Subscription) store.ActivityEvent {
	t.Helper()
	select {
	case e, ok := <-sub.C:
		require.True(t, ok, "subscription closed: %v", sub.Err())
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return store.ActivityEvent{}
}

func TestHubDeliversEventsCommittedInATransaction(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	sub := b.hub.Subscribe(org, activity.Filter{})
	defer sub.Close()

	ids := b.insert(t, ev(org, "organization.renamed"), ev(org, "organization.member.added"))

	first, second := next(t, sub), next(t, sub)
	require.Equal(t, []int64{ids[0], ids[1]}, []int64{first.ID, second.ID})
	require.Equal(t, "organization.renamed", first.EventType)
	require.Equal(t, org, *first.OrganizationID)
	require.Equal(t, org.String(), first.EntityID)
	require.NotZero(t, first.CreatedAt)
}

func TestHubNeverDeliversARolledBackEvent(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	sub := b.hub.Subscribe(org, activity.Filter{})
	defer sub.Close()

	errRollback := errors.New("roll back")
	err := b.st.InTx(context.Background(), func(q *store.Queries) error {
		if _, err := q.InsertActivity(context.Background(), ev(org, "organization.renamed")); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	marker := b.insert(t, ev(org, "organization.marker"))[0]

	// Notifications arrive in commit order: had the rolled-back event been sent, it would
	// come before the marker.
	require.Equal(t, marker, next(t, sub).ID)
}

func TestHubDeliversOnlyTheSubscribedOrganizationsEvents(t *testing.T) {
	b := setup(t)
	orgA, orgB := uuid.New(), uuid.New()
	subA := b.hub.Subscribe(orgA, activity.Filter{})
	defer subA.Close()
	subB := b.hub.Subscribe(orgB, activity.Filter{})
	defer subB.Close()

	idB := b.insert(t, ev(orgB, "organization.renamed"))[0]
	b.insert(t, store.ActivityEvent{ActorKind: store.ActorSystem, EventType: "admin.user.disabled"}) // platform-wide
	idA := b.insert(t, ev(orgA, "organization.renamed"))[0]

	require.Equal(t, idA, next(t, subA).ID)
	require.Equal(t, idB, next(t, subB).ID)
	select {
	case e := <-subB.C:
		t.Fatalf("org B's subscriber got an unexpected event %d (%s)", e.ID, e.EventType)
	default:
	}
}

func TestHubDeliversOnlyEventsMatchingTheFilter(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	sub := b.hub.Subscribe(org, activity.Filter{EventTypes: []string{"organization.", "apitoken.created"}})
	defer sub.Close()

	b.insert(t, ev(org, "invitation.created"))
	renamed := b.insert(t, ev(org, "organization.renamed"))[0]
	b.insert(t, ev(org, "apitoken.revoked"))
	b.insert(t, ev(org, "organizationx"))
	created := b.insert(t, ev(org, "apitoken.created"))[0]
	marker := b.insert(t, ev(org, "organization.marker"))[0]

	require.Equal(t, []int64{renamed, created, marker}, []int64{next(t, sub).ID, next(t, sub).ID, next(t, sub).ID})
}

func TestHubDropsASubscriberThatFallsBehind(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	slow := b.hub.Subscribe(org, activity.Filter{})
	defer slow.Close()

	events := make([]store.ActivityEvent, activity.SubscriberBuffer+6)
	for i := range events {
		events[i] = ev(org, "organization.renamed")
	}
	b.insert(t, events...)

	require.Eventually(t, func() bool { return slow.Err() != nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, slow.Err(), activity.ErrLagged)
	got := 0
	for range slow.C {
		got++
	}
	require.Equal(t, activity.SubscriberBuffer, got, "what was buffered is still readable, then the channel closes")
}

func TestHubCatchesUpOnEventsCommittedWhileItReconnects(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	sub := b.hub.Subscribe(org, activity.Filter{})
	defer sub.Close()

	// Cut the hub's listening connection, as a database restart or a network blip would.
	ctx := context.Background()
	var killed int
	require.NoError(t, b.st.Pool().QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed))
	require.Equal(t, 1, killed)
	ids := b.insert(t, ev(org, "organization.renamed"), ev(org, "organization.member.added"))

	require.Equal(t, ids, []int64{next(t, sub).ID, next(t, sub).ID})
	later := b.insert(t, ev(org, "organization.marker"))[0]
	require.Equal(t, later, next(t, sub).ID, "no duplicates, and live again after the reconnect")
}

func TestHubStopEndsEverySubscriptionAndRefusesNewOnes(t *testing.T) {
	b := setup(t)
	sub := b.hub.Subscribe(uuid.New(), activity.Filter{})

	b.stop()
	select {
	case _, ok := <-sub.C:
		require.False(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("subscription still open 10s after the hub stopped")
	}
	require.ErrorIs(t, sub.Err(), activity.ErrStopped)
	<-b.done

	late := b.hub.Subscribe(uuid.New(), activity.Filter{})
	_, ok := <-late.C
	require.False(t, ok, "a subscription made after the hub stopped comes back closed")
	require.ErrorIs(t, late.Err(), activity.ErrStopped)
	late.Close() // still safe
}

func TestSubscriptionCloseIsIdempotentAndStopsDelivery(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	closed := b.hub.Subscribe(org, activity.Filter{})
	open := b.hub.Subscribe(org, activity.Filter{})
	defer open.Close()
	closed.Close()
	closed.Close()
	require.NoError(t, closed.Err())

	id := b.insert(t, ev(org, "organization.renamed"))[0]
	require.Equal(t, id, next(t, open).ID)
	_, ok := <-closed.C
	require.False(t, ok)
}

func TestFilterMatch(t *testing.T) {
	alice, bob := uuid.New(), uuid.New()
	e := store.ActivityEvent{EventType: "organization.member.role_changed", ActorUserID: &alice,
		EntityType: "membership", EntityID: "m1"}
	for _, tc := range []struct {
		name string
		f    activity.Filter
		want bool
	}{
		{"an empty filter matches everything", activity.Filter{}, true},
		{"an exact type matches", activity.Filter{EventTypes: []string{"organization.member.role_changed"}}, true},
		{"a type without a trailing dot is not a prefix", activity.Filter{EventTypes: []string{"organization.member"}}, false},
		{"a type ending in a dot is a prefix", activity.Filter{EventTypes: []string{"organization."}}, true},
		{"any one of several types matches", activity.Filter{EventTypes: []string{"apitoken.", "organization.member.role_changed"}}, true},
		{"other types do not match", activity.Filter{EventTypes: []string{"apitoken."}}, false},
		{"the actor matches", activity.Filter{ActorUserID: alice}, true},
		{"another actor does not match", activity.Filter{ActorUserID: bob}, false},
		{"the entity matches", activity.Filter{EntityType: "membership", EntityID: "m1"}, true},
		{"another entity id does not match", activity.Filter{EntityType: "membership", EntityID: "m2"}, false},
		{"another entity type does not match", activity.Filter{EntityType: "invitation"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.f.Match(e))
		})
	}
	t.Run("an actor filter skips events without a user", func(t *testing.T) {
		require.False(t, activity.Filter{ActorUserID: alice}.Match(store.ActivityEvent{EventType: "x"}))
	})
}
