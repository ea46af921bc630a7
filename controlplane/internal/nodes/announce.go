package nodes

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// announceDelay is how long a new session's announcement waits for others to share its
// notification. Every notifying commit takes Postgres's notification lock for its whole WAL
// flush, so a thousand agents reconnecting at once would otherwise queue a thousand flushes
// one after another.
const announceDelay = 20 * time.Millisecond

// announcements are the new sessions of this replica that other replicas have not been told
// of yet ("<node id> session <replica id>" on store.NodeCommandsChannel, which makes a replica
// holding an older session of the node end it).
type announcements struct {
	// running is set while announceLoop sends batches; without it, announcements are sent
	// at once.
	running atomic.Bool
	mu      sync.Mutex
	pending []uuid.UUID
	// ready is signalled when pending gets its first entry.
	ready chan struct{}
}

func newAnnouncements() *announcements {
	return &announcements{ready: make(chan struct{}, 1)}
}

func (a *announcements) add(nodeID uuid.UUID) {
	a.mu.Lock()
	a.pending = append(a.pending, nodeID)
	first := len(a.pending) == 1
	a.mu.Unlock()
	if first {
		select {
		case a.ready <- struct{}{}:
		default:
		}
	}
}

func (a *announcements) take() []uuid.UUID {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.pending
	a.pending = nil
	return out
}

// putBack returns announcements that could not be sent, ahead of newer ones.
func (a *announcements) putBack(ids []uuid.UUID) {
	a.mu.Lock()
	a.pending = append(slices.Clip(ids), a.pending...)
	a.mu.Unlock()
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

// announceSession tells the other replicas, shortly, that the node has a new session here:
// in the next batch while Run runs, otherwise at once.
func (m *Manager) announceSession(ctx context.Context, nodeID uuid.UUID) error {
	if m.announced.running.Load() {
		m.announced.add(nodeID)
		return nil
	}
	return m.store.NotifyNodeCommands(ctx, nodeID, m.sessionPayload())
}

// sessionPayload is what follows the node id in a new session's announcement.
func (m *Manager) sessionPayload() string { return "session " + m.replica.String() }

// announceLoop sends pending announcements in batches until ctx is done.
func (m *Manager) announceLoop(ctx context.Context) {
	m.announced.running.Store(true)
	defer m.announced.running.Store(false)
	payload := m.sessionPayload()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.announced.ready:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(announceDelay):
		}
		ids := m.announced.take()
		if err := m.store.NotifyNodeCommandsMany(ctx, ids, payload); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.logger.Warn("announce new sessions", "sessions", len(ids), "err", err)
			m.announced.putBack(ids)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}
