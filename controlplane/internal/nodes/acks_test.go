package nodes_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
)

// Whoever waits for a node's answer (a deployment) is woken when a replica records one, on
// every replica: by the agent resuming past commands, or by an acknowledgement. Another
// node's answers wake nobody waiting for this one.
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

	// Another replica, where the deployment's job may run.
	replica := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger(),
		PollInterval: time.Hour, KeepaliveInterval: time.Hour, HealthInterval: time.Hour,
		FlushInterval: time.Hour, MetricsInterval: time.Hour, Now: b.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); replica.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-replica.Ready()
	wokenSoon := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}

	resumed, resumedThere, other := b.m.AckSignal(nodeID), replica.AckSignal(nodeID), b.m.AckSignal(otherID)
	a := b.connect(t, nodeID, 1) // finished 1, its acknowledgement lost
	require.Equal(t, int64(2), a.next().GetSeq())
	require.True(t, wokenSoon(resumed), "resuming past a command did not wake its waiter")
	require.True(t, wokenSoon(resumedThere), "resuming past a command did not wake its waiter on another replica")

	acked, ackedThere := b.m.AckSignal(nodeID), replica.AckSignal(nodeID)
	require.False(t, woken(acked), "a new wait starts unwoken")
	b.ack(t, nodeID, 2, "")
	require.True(t, wokenSoon(acked), "an acknowledgement did not wake its waiter")
	require.True(t, wokenSoon(ackedThere), "an acknowledgement did not wake its waiter on another replica")
	require.False(t, woken(other), "another node's answers woke this node's waiter")
	b.ack(t, otherID, 1, "")
	require.True(t, wokenSoon(other))
}
