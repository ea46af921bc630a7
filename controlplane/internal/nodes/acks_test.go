package nodes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
)

// Whoever waits for a node's answer (a deployment) is woken when this replica records one:
// by the agent resuming past commands, or by an acknowledgement. Another node's answers
// wake nobody waiting for this one.
func TestAnAnswerWakesWhoWaitsForTheNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	otherID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.3", "")
	for range 3 {
		b.enqueue(t, nodeID, update("x", "active"))
	}
	b.enqueue(t, otherID, update("y", "active"))
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	resumed, other := b.m.AckSignal(nodeID), b.m.AckSignal(otherID)
	a := b.connect(t, nodeID, 1) // finished 1, its acknowledgement lost
	require.Equal(t, int64(2), a.next().GetSeq())
	require.True(t, woken(resumed), "resuming past a command did not wake its waiter")

	acked := b.m.AckSignal(nodeID)
	require.False(t, woken(acked), "a new wait starts unwoken")
	b.ack(t, nodeID, 2, "")
	require.True(t, woken(acked), "an acknowledgement did not wake its waiter")
	require.False(t, woken(other), "another node's answers woke this node's waiter")
	b.ack(t, otherID, 1, "")
	require.True(t, woken(other))
}
