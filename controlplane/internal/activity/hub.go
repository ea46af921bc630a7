// Package activity delivers new activity events live: a Hub listens on Postgres for events
// committed by any control-plane replica and fans them out to subscribers.
//
// Delivery is best effort with a clear failure mode. Postgres notifies on commit, so rolled-back
// events never arrive. While the hub's connection is down it reconnects with jittered backoff
// and then catches up on the events it missed, by id. A subscriber that cannot keep up (its
// buffer of SubscriberBuffer events is full) is dropped: its channel closes with ErrLagged, and
// the client resumes by listing recent activity and subscribing again.
package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// SubscriberBuffer is how many events a subscriber may have unread before it is dropped.
const SubscriberBuffer = 64

// catchUpPage is how many missed events the hub loads at a time after a reconnect.
const catchUpPage = 500

// Why a subscription's channel closed (see Subscription.Err).
var (
	// ErrLagged means the subscriber fell behind and was dropped.
	ErrLagged = errors.New("activity subscriber fell behind and was dropped")
	// ErrStopped means the hub stopped (the server is shutting down).
	ErrStopped = errors.New("activity hub stopped")
)

// Filter narrows what a subscription receives. Zero fields match everything. Unlike a listing's
// filter it has no time bounds: a live stream only ever sees new events.
type Filter struct {
	// EventTypes matches events whose type equals one of these, or starts with one that ends
	// in "." ("organization." matches every organization event).
	EventTypes []string
	// ActorUserID matches events made by this user; uuid.Nil matches any actor.
	ActorUserID uuid.UUID
	EntityType  string
	EntityID    string
}

// Match reports whether the filter admits e.
func (f Filter) Match(e store.ActivityEvent) bool {
	if len(f.EventTypes) > 0 && !slices.ContainsFunc(f.EventTypes, func(t string) bool {
		if strings.HasSuffix(t, ".") {
			return strings.HasPrefix(e.EventType, t)
		}
		return e.EventType == t
	}) {
		return false
	}
	if f.ActorUserID != uuid.Nil && (e.ActorUserID == nil || *e.ActorUserID != f.ActorUserID) {
		return false
	}
	if f.EntityType != "" && e.EntityType != f.EntityType {
		return false
	}
	if f.EntityID != "" && e.EntityID != f.EntityID {
		return false
	}
	return true
}

// Subscription receives one organization's new events that match its filter.
type Subscription struct {
	// C delivers the events. It is closed when the subscription ends: by Close, by the hub
	// stopping, or because the subscriber fell behind; Err says which.
	C <-chan store.ActivityEvent

	c      chan store.ActivityEvent
	hub    *Hub
	orgID  uuid.UUID
	filter Filter
	// closed and err are guarded by hub.mu.
	closed bool
	err    error
}

// Close ends the subscription and closes C. It is safe to call more than once, and after the
// hub has ended the subscription itself.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s, nil)
}

// Err returns why C was closed: nil while it is open or after Close, ErrLagged or ErrStopped
// when the hub ended the subscription.
func (s *Subscription) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Hub fans new activity events out to subscribers.
type Hub struct {
	store  *store.Store
	logger *slog.Logger
	ready  chan struct{}

	mu      sync.Mutex
	subs    map[uuid.UUID]map[*Subscription]struct{} // by organization
	stopped bool
	isReady bool
}

// NewHub returns a hub reading events from st. It delivers nothing until Run.
func NewHub(st *store.Store, logger *slog.Logger) *Hub {
	return &Hub{
		store:  st,
		logger: logger.With("component", "activity"),
		ready:  make(chan struct{}),
		subs:   map[uuid.UUID]map[*Subscription]struct{}{},
	}
}

// Ready is closed once the hub first listens. From then on every event committed reaches the
// matching subscribers, across reconnects too.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Subscribe starts receiving orgID's new events that match f. Platform-wide events (with no
// organization) are never delivered. After the hub stopped, the subscription comes back
// already closed, with ErrStopped.
func (h *Hub) Subscribe(orgID uuid.UUID, f Filter) *Subscription {
	f.EventTypes = slices.Clone(f.EventTypes)
	c := make(chan store.ActivityEvent, SubscriberBuffer)
	s := &Subscription{C: c, c: c, hub: h, orgID: orgID, filter: f}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		s.closed, s.err = true, ErrStopped
		close(c)
		return s
	}
	if h.subs[orgID] == nil {
		h.subs[orgID] = map[*Subscription]struct{}{}
	}
	h.subs[orgID][s] = struct{}{}
	return s
}

// removeLocked ends s with err; h.mu must be held.
func (h *Hub) removeLocked(s *Subscription, err error) {
	if s.closed {
		return
	}
	s.closed, s.err = true, err
	delete(h.subs[s.orgID], s)
	if len(h.subs[s.orgID]) == 0 {
		delete(h.subs, s.orgID)
	}
	close(s.c)
}

// deliver hands e to every matching subscriber without ever blocking: a subscriber whose
// buffer is full is dropped. Sends and closes both happen under h.mu, so a subscription is
// never sent to after it closed.
func (h *Hub) deliver(e store.ActivityEvent) {
	if e.OrganizationID == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[*e.OrganizationID] {
		if !s.filter.Match(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			h.logger.Warn("dropping an activity subscriber that fell behind",
				"organization_id", e.OrganizationID.String(), "buffer", SubscriberBuffer)
			h.removeLocked(s, ErrLagged)
		}
	}
}

func (h *Hub) hasSubscribers() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *Hub) markReady() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.isReady {
		h.isReady = true
		close(h.ready)
	}
}

// stop ends every subscription and refuses new ones.
func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for _, subs := range h.subs {
		for s := range subs {
			h.removeLocked(s, ErrStopped)
		}
	}
}

// Run listens until ctx is done, then closes every subscription. It reconnects with jittered
// backoff whenever its connection drops.
func (h *Hub) Run(ctx context.Context) {
	defer h.stop()
	var pos position
	store.KeepListening(ctx, h.logger, "activity listener", func(ctx context.Context) (bool, error) {
		return h.listen(ctx, &pos)
	})
}

// listen holds one dedicated connection (outside the pool, so it never starves queries) that
// LISTENs for new events, and delivers them until the connection fails or ctx is done.
// connected reports whether it got as far as listening.
func (h *Hub) listen(ctx context.Context, pos *position) (connected bool, err error) {
	conn, closeConn, err := h.store.Listen(ctx, store.ActivityChannel)
	if err != nil {
		return false, err
	}
	defer closeConn()
	// Listening first, then catching up: an event committed in between is both notified and
	// caught up, and position drops the duplicate.
	if err := h.catchUp(ctx, pos); err != nil {
		return true, err
	}
	h.markReady()
	h.logger.Info("listening for activity", "after_id", pos.lastID)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			h.logger.Warn("ignoring a malformed activity notification", "payload", n.Payload)
			continue
		}
		e, err := h.store.ActivityByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // notified and gone (the log is append-only, so only by hand)
		} else if err != nil {
			// Reconnecting catches up from the last id seen, this one included.
			return true, fmt.Errorf("load activity %d: %w", id, err)
		}
		if pos.see(e.ID) {
			h.deliver(e)
		}
	}
}

// catchUp delivers the events committed since the last one seen. The first time, and when
// nobody is subscribed, there is nothing to catch up: it only notes where the log ends.
func (h *Hub) catchUp(ctx context.Context, pos *position) error {
	if !pos.started || !h.hasSubscribers() {
		id, err := h.store.LatestActivityID(ctx)
		if err != nil {
			return err
		}
		pos.started, pos.lastID = true, max(pos.lastID, id)
		return nil
	}
	for {
		events, err := h.store.ActivityAfter(ctx, pos.lastID, catchUpPage)
		if err != nil {
			return err
		}
		for _, e := range events {
			if pos.see(e.ID) {
				h.deliver(e)
			}
		}
		if len(events) < catchUpPage {
			return nil
		}
	}
}

// position is how far the listener has read the log: the highest id seen, and the ids seen
// lately. Notifications arrive in commit order, not id order, so the highest id alone cannot
// tell a duplicate from a late commit.
type position struct {
	started bool
	lastID  int64
	recent  [1024]int64
	next    int
	seen    map[int64]struct{}
}

// see records id and reports whether it is new.
func (p *position) see(id int64) bool {
	if p.seen == nil {
		p.seen = make(map[int64]struct{}, len(p.recent))
	}
	if _, dup := p.seen[id]; dup {
		return false
	}
	if old := p.recent[p.next]; old != 0 {
		delete(p.seen, old)
	}
	p.recent[p.next], p.next = id, (p.next+1)%len(p.recent)
	p.seen[id] = struct{}{}
	p.lastID = max(p.lastID, id)
	return true
}
