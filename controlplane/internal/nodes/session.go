package nodes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Sender sends one message down a node's command stream (connect.ServerStream.Send).
type Sender func(*agentv1.ConnectResponse) error

// session is one live command stream of a node on this replica.
type session struct {
	id     uuid.UUID
	nodeID uuid.UUID
	// wake is signalled when the node may have new commands or may have been removed.
	wake chan struct{}
	// ephemeral carries commands that are not stored nor acknowledged (log follows).
	ephemeral chan *agentv1.Command
	cancel    context.CancelCauseFunc
	// delivered is the sequence of the last command sent (or the one the agent resumed
	// after): the manager's poll looks for commands above it.
	delivered atomic.Int64
	// conn is the agent connection the stream came on (nil: unknown).
	conn *Connection
	// heardAt is when a report last came over conn (monotonic nanoseconds, 0: never): its
	// answer was the stream's keepalive.
	heardAt atomic.Int64
}

// Connection identifies one agent connection. An agent's command stream and its reports
// share its HTTP/2 connection; a report answered over the stream's own connection proves
// that connection alive both ways, so the stream needs no keepalive of its own while such
// reports keep coming (docs/agents-contract.md).
type Connection struct{ _ byte }

type connectionKey struct{}

// WithConnection marks ctx, the base context of one agent connection's requests, with a new
// Connection.
func WithConnection(ctx context.Context) context.Context {
	return context.WithValue(ctx, connectionKey{}, &Connection{})
}

// connectionOf returns the connection a request came on, or nil.
func connectionOf(ctx context.Context) *Connection {
	c, _ := ctx.Value(connectionKey{}).(*Connection)
	return c
}

// monoStart anchors monotonic timestamps kept in atomics.
var monoStart = time.Now()

func monoNow() int64 { return int64(time.Since(monoStart)) }

// keepaliveWait returns how long the session's keepalive can wait still, because a report
// over its connection was answered within the interval; 0 means send one now.
//
//go:noinline
func (s *session) keepaliveWait(interval time.Duration) time.Duration {
	heard := s.heardAt.Load()
	if heard == 0 {
		return 0
	}
	if wait := interval - time.Duration(monoNow()-heard); wait > 0 {
		return wait
	}
	return 0
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// deliveryPage is how many commands a session loads at a time.
const deliveryPage = 100

// Serve runs a node's command stream until ctx ends, the node opens a newer session
// (ErrReplaced), Close ends it (ErrClosed), the node is removed (ErrNodeRemoved), the manager
// stops (ErrStopped) or send fails. It first sends every command with a sequence above
// afterSeq in order (or, with none, a keepalive: a response without a command), then new ones
// as they are queued, and a keepalive whenever the stream was idle for the keepalive interval
// and no report over the stream's connection was answered within it.
//
// Resuming after afterSeq also tells what the agent finished: open commands up to it are
// acknowledged (with an unknown outcome: their own acknowledgements were lost). Connecting is
// when the cluster lifecycle moves the node along: a first manager gets swarm_init, a node
// of an active cluster swarm_join, a joined node its gossip configuration.
func (m *Manager) Serve(ctx context.Context, nodeID uuid.UUID, afterSeq int64, send Sender) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s, err := m.open(ctx, cancel, nodeID, afterSeq)
	if err != nil {
		return err
	}
	defer m.unregister(s)
	return m.stream(ctx, s, afterSeq, send)
}

// open registers a new session of the node and runs the connect-time lifecycle.
//
// open and stream are kept apart, and stream's frame small, because a session's goroutine
// waits in stream for its whole life: Go shrinks a parked goroutine's stack only while the
// frames in use fill under a quarter of it, and the few hundred bytes saved here keep each
// session's stack at 8 KiB instead of 16 (docs/benchmarks.md, node agents).
//
//go:noinline
func (m *Manager) open(ctx context.Context, cancel context.CancelCauseFunc, nodeID uuid.UUID, afterSeq int64) (*session, error) {
	s := &session{id: uuid.New(), nodeID: nodeID, wake: make(chan struct{}, 1),
		ephemeral: make(chan *agentv1.Command, ephemeralBuffer), cancel: cancel, conn: connectionOf(ctx)}
	if err := m.register(s); err != nil {
		return nil, err
	}
	s.delivered.Store(afterSeq)
	if err := m.connected(ctx, nodeID, afterSeq); err != nil {
		m.unregister(s)
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		return nil, err
	}
	m.logger.Info("agent connected", "node_id", nodeID.String(), "session_id", s.id.String(), "after_seq", afterSeq)
	return s, nil
}

// stream delivers the session's commands and keepalives until the session ends. Commands are
// found when a notification wakes the session, or when the manager's poll (one query for every
// session of this replica) finds some a notification missed.
//
//go:noinline
func (m *Manager) stream(ctx context.Context, s *session, afterSeq int64, send Sender) error {
	cursor := afterSeq
	keepalive := time.NewTimer(m.opts.KeepaliveInterval)
	defer keepalive.Stop()
	// woken: look for commands (at the start, and after a wake); a keepalive or an
	// ephemeral command sent is no reason to query the outbox.
	woken, first := true, true
	for {
		if woken && !first && m.removed(ctx, s.nodeID) {
			return ErrNodeRemoved
		}
		sent := false
		if woken {
			var err error
			sent, err = m.deliver(ctx, s.nodeID, &cursor, send)
			s.delivered.Store(cursor)
			if err != nil {
				if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
					return cause
				}
				return err
			}
		}
		if first && !sent {
			// Nothing to resume: a keepalive tells the agent at once that the session is up.
			if err := send(&agentv1.ConnectResponse{}); err != nil {
				return fmt.Errorf("send keepalive: %w", err)
			}
			sent = true
		}
		switch {
		case first:
			// The next keepalive comes at a random point of the interval, so that sessions
			// that started together (all of them, after the control plane restarts) do not
			// send their keepalives together ever after: at 10,000 sessions those bursts
			// stalled the reports that came with them.
			keepalive.Reset(time.Duration(rand.Int64N(int64(m.opts.KeepaliveInterval))) + 1)
		case sent:
			keepalive.Reset(m.opts.KeepaliveInterval)
		}
		woken, first = false, false
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-s.wake:
			woken = true
		case cmd := <-s.ephemeral:
			if err := send(&agentv1.ConnectResponse{Command: cmd}); err != nil {
				return fmt.Errorf("send ephemeral command: %w", err)
			}
			keepalive.Reset(m.opts.KeepaliveInterval)
		case <-keepalive.C:
			if wait := s.keepaliveWait(m.opts.KeepaliveInterval); wait > 0 {
				keepalive.Reset(wait)
				break
			}
			if err := send(&agentv1.ConnectResponse{}); err != nil {
				return fmt.Errorf("send keepalive: %w", err)
			}
			keepalive.Reset(m.opts.KeepaliveInterval)
		}
	}
}

// removed reports whether the node is marked removed (false when that cannot be read: the
// next wake or poll asks again).
//
//go:noinline
func (m *Manager) removed(ctx context.Context, nodeID uuid.UUID) bool {
	n, err := m.store.NodeByID(ctx, nodeID)
	return err == nil && n.RemovedAt != nil
}

// deliver sends the node's commands after *cursor, advancing it, and reports whether it sent
// any.
func (m *Manager) deliver(ctx context.Context, nodeID uuid.UUID, cursor *int64, send Sender) (bool, error) {
	sent := false
	for {
		rows, err := m.store.NodeCommandsAfter(ctx, nodeID, *cursor, deliveryPage)
		if err != nil {
			return sent, fmt.Errorf("load commands: %w", err)
		}
		for _, row := range rows {
			cmd, err := decodeCommand(row)
			if err != nil {
				return sent, err
			}
			if err := send(&agentv1.ConnectResponse{Command: cmd}); err != nil {
				return sent, fmt.Errorf("send command %d: %w", row.Seq, err)
			}
			*cursor, sent = row.Seq, true
		}
		if len(rows) < deliveryPage {
			return sent, nil
		}
	}
}

// register makes s the node's session on this replica, ending an older one.
func (m *Manager) register(s *session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	if old := m.sessions[s.nodeID]; old != nil {
		old.cancel(ErrReplaced)
	}
	m.sessions[s.nodeID] = s
	return nil
}

func (m *Manager) unregister(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.nodeID] == s {
		delete(m.sessions, s.nodeID)
	}
}

// Close ends the node's session on this replica, if it has one (its Serve returns ErrClosed
// at once). Removal also ends sessions on other replicas: they are notified and find the node
// removed.
func (m *Manager) Close(nodeID uuid.UUID) {
	m.standing.forgetNode(nodeID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[nodeID]; s != nil {
		s.cancel(ErrClosed)
		delete(m.sessions, nodeID)
	}
}

// pollLoop looks, every poll interval, for what notifications may have missed: commands for
// this replica's sessions, and certificates remembered as good that are no longer.
func (m *Manager) pollLoop(ctx context.Context) {
	every(ctx, m.opts.PollInterval, nil, func(ctx context.Context) {
		if err := m.pollSessions(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("poll for node commands", "err", err)
		}
		if err := m.recheckStandings(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("recheck node certificates", "err", err)
		}
	})
}

// pollSessions wakes every session of this replica whose node has commands above the last one
// it delivered, in one query.
func (m *Manager) pollSessions(ctx context.Context) error {
	m.mu.Lock()
	ids := make([]uuid.UUID, 0, len(m.sessions))
	after := make([]int64, 0, len(m.sessions))
	for id, s := range m.sessions {
		ids = append(ids, id)
		after = append(after, s.delivered.Load())
	}
	m.mu.Unlock()
	pending, err := m.store.NodesWithCommandsAfter(ctx, ids, after)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range pending {
		if s := m.sessions[id]; s != nil {
			s.poke()
		}
	}
	return nil
}

// ephemeralBuffer is how many ephemeral commands may wait for a session's stream.
const ephemeralBuffer = 16

// SendEphemeral sends a command on the node's live session on this replica, without storing
// it: it has sequence 0 and is never acknowledged (a log follow, whose answer comes back on
// its own RPC). It reports false when the node has no session here or its queue is full.
func (m *Manager) SendEphemeral(nodeID uuid.UUID, cmd *agentv1.Command) bool {
	m.mu.Lock()
	s := m.sessions[nodeID]
	m.mu.Unlock()
	if s == nil {
		return false
	}
	cmd.Seq = 0
	select {
	case s.ephemeral <- cmd:
		return true
	default:
		return false
	}
}

// Connected reports whether the node has a live session on this replica.
func (m *Manager) Connected(nodeID uuid.UUID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[nodeID] != nil
}

// stop ends every session and watcher and refuses new ones.
func (m *Manager) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	for id, s := range m.sessions {
		s.cancel(ErrStopped)
		delete(m.sessions, id)
	}
	for clusterID, ws := range m.watchers {
		for w := range ws {
			close(w.c)
		}
		delete(m.watchers, clusterID)
	}
}

// watcher is told when a cluster's nodes change.
type watcher struct {
	c chan struct{}
}

// WatchNodes returns a channel that receives when the cluster's nodes may have changed (on
// any replica), and a function to stop watching. Signals coalesce: a receiver that falls
// behind gets one. The channel closes when the manager stops.
func (m *Manager) WatchNodes(clusterID uuid.UUID) (<-chan struct{}, func()) {
	w := &watcher{c: make(chan struct{}, 1)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		close(w.c)
		return w.c, func() {}
	}
	if m.watchers[clusterID] == nil {
		m.watchers[clusterID] = map[*watcher]struct{}{}
	}
	m.watchers[clusterID][w] = struct{}{}
	return w.c, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.watchers[clusterID][w]; ok {
			delete(m.watchers[clusterID], w)
			if len(m.watchers[clusterID]) == 0 {
				delete(m.watchers, clusterID)
			}
			close(w.c)
		}
	}
}

func (w *watcher) poke() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// wakeAll pokes every session and watcher: after the listener (re)connects, notifications may
// have been missed.
func (m *Manager) wakeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		s.poke()
	}
	for _, ws := range m.watchers {
		for w := range ws {
			w.poke()
		}
	}
}

// onCommandsNotice handles a notification on store.NodeCommandsChannel: "<node id>" wakes
// the node's session; "<node id> session <replica id>" says the node opened a session on that
// replica, so one here is older and ends (a newer one here already replaced older ones here).
func (m *Manager) onCommandsNotice(payload string) {
	nodePart, rest, _ := strings.Cut(payload, " ")
	nodeID, err := uuid.Parse(nodePart)
	if err != nil {
		return
	}
	if rest == ackedNotice {
		m.acks.fire(nodeID)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[nodeID]
	if s == nil {
		return
	}
	if replica, ok := strings.CutPrefix(rest, "session "); ok {
		if replica != m.replica.String() {
			s.cancel(ErrReplaced)
			delete(m.sessions, nodeID)
		}
		return
	}
	s.poke()
}

func (m *Manager) onNodesNotice(payload string) {
	clusterID, err := uuid.Parse(payload)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for w := range m.watchers[clusterID] {
		w.poke()
	}
}

// listenLoop keeps a LISTEN connection until ctx is done, reconnecting with jittered backoff.
func (m *Manager) listenLoop(ctx context.Context) {
	store.KeepListening(ctx, m.logger, "node listener", m.listen)
}

// listen holds one dedicated connection (outside the pool) that LISTENs for new commands and
// node changes and dispatches them until it fails or ctx is done.
func (m *Manager) listen(ctx context.Context) (connected bool, err error) {
	conn, closeConn, err := m.store.Listen(ctx, store.NodeCommandsChannel, store.NodeChangesChannel, store.NodeStandingChannel)
	if err != nil {
		return false, err
	}
	defer closeConn()
	// Anything committed before LISTEN took effect was not notified: look again, and trust
	// remembered certificate standings only while notifications can reach them.
	m.standing.setLive(true)
	defer m.standing.setLive(false)
	m.wakeAll()
	m.readyOnce.Do(func() { close(m.ready) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return true, ctx.Err()
			}
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		switch n.Channel {
		case store.NodeCommandsChannel:
			m.onCommandsNotice(n.Payload)
		case store.NodeChangesChannel:
			m.onNodesNotice(n.Payload)
		case store.NodeStandingChannel:
			if nodeID, err := uuid.Parse(n.Payload); err == nil {
				m.standing.forgetNode(nodeID)
			}
		}
	}
}
