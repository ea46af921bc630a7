package nodes

import (
	"sync"

	"github.com/google/uuid"
)

// ackedNotice follows the node id on store.NodeCommandsChannel when a replica recorded one
// of the node's answers to commands (sent in the recording transaction: on commit).
const ackedNotice = "acked"

// ackSignals wakes whoever waits for a node's answer to a command: one channel per node,
// closed and forgotten whenever a replica announces one of the node's answers.
type ackSignals struct {
	mu sync.Mutex
	by map[uuid.UUID]chan struct{}
}

func (a *ackSignals) wait(nodeID uuid.UUID) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := a.by[nodeID]
	if ch == nil {
		if a.by == nil {
			a.by = make(map[uuid.UUID]chan struct{})
		}
		ch = make(chan struct{})
		a.by[nodeID] = ch
	}
	return ch
}

func (a *ackSignals) fire(nodeID uuid.UUID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch := a.by[nodeID]; ch != nil {
		close(ch)
		delete(a.by, nodeID)
	}
}

// AckSignal returns a channel that closes the next time any replica records an
// acknowledgement of one of the node's commands (any of them: look at the command again).
// Taken before reading a command's state, a wait for its answer misses none announced
// while this replica listens; announcements are lost while its LISTEN connection is down,
// so wait with a timeout as well.
func (m *Manager) AckSignal(nodeID uuid.UUID) <-chan struct{} { return m.acks.wait(nodeID) }
