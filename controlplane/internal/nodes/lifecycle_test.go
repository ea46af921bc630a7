package nodes_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

func initOutput(swarmID, swarmNodeID string) string {
	out, _ := json.Marshal(map[string]string{
		"swarm_id": swarmID, "swarm_node_id": swarmNodeID,
		"manager_join_token": "SWMTKN-1-manager", "worker_join_token": "SWMTKN-1-worker",
	})
	return string(out)
}

func TestTheFirstManagerMakesTheSwarmAndLaterNodesJoinIt(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 300 * time.Millisecond })
	clusterID, gossipKey := b.cluster(t, "pending")
	mgrID := b.node(t, clusterID, store.RoleManagerNode, "10.0.0.1", "")
	workerID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")

	// The worker connects first: nothing to join yet.
	worker := b.connect(t, workerID, 0)
	worker.idle()

	mgr := b.connect(t, mgrID, 0)
	init := mgr.next()
	require.Equal(t, "10.0.0.1", init.GetSwarmInit().GetAdvertiseAddr())
	require.Equal(t, "0.0.0.0:2377", init.GetSwarmInit().GetListenAddr())
	require.Equal(t, "initializing", b.clusterState(t, clusterID).State)

	b.ack(t, mgrID, init.GetSeq(), initOutput("swarm-abc", "mgr-swarm-id"))
	c := b.clusterState(t, clusterID)
	require.Equal(t, "active", c.State)
	require.Equal(t, "swarm-abc", c.SwarmID)
	token, err := b.keyring.Open(c.WorkerJoinTokenSealed, nodes.JoinTokenContext(clusterID, "worker"))
	require.NoError(t, err)
	require.Equal(t, "SWMTKN-1-worker", string(token))
	require.NotContains(t, c.ManagerJoinTokenSealed, "SWMTKN", "join tokens are sealed at rest")
	n := b.getNode(t, mgrID)
	require.Equal(t, "mgr-swarm-id", n.SwarmNodeID)
	require.Equal(t, store.NodeReady, n.State)

	// The manager gets its gossip configuration (no peers yet); the waiting worker its join.
	gossip := mgr.next().GetGossipConfig()
	require.Equal(t, gossipKey, gossip.GetKey())
	require.Equal(t, "skypanel-"+clusterID.String(), gossip.GetLabel())
	require.Equal(t, int32(7947), gossip.GetPort())
	require.Empty(t, gossip.GetPeers())
	join := worker.next()
	require.Equal(t, []string{"10.0.0.1:2377"}, join.GetSwarmJoin().GetRemoteAddrs())
	require.Equal(t, "SWMTKN-1-worker", join.GetSwarmJoin().GetJoinToken())
	require.Equal(t, "10.0.0.2", join.GetSwarmJoin().GetAdvertiseAddr())

	b.ack(t, workerID, join.GetSeq(), `{"swarm_node_id": "worker-swarm-id"}`)
	require.Equal(t, "worker-swarm-id", b.getNode(t, workerID).SwarmNodeID)
	require.Equal(t, []string{"10.0.0.2:7947"}, mgr.next().GetGossipConfig().GetPeers())
	require.Equal(t, []string{"10.0.0.1:7947"}, worker.next().GetGossipConfig().GetPeers())
	mgr.idle()
	worker.idle()

	// A node that connects to the active cluster later joins at once, as a manager with the
	// manager token.
	lateID := b.node(t, clusterID, store.RoleManagerNode, "10.0.0.3", "")
	late := b.connect(t, lateID, 0)
	lateJoin := late.next().GetSwarmJoin()
	require.Equal(t, "SWMTKN-1-manager", lateJoin.GetJoinToken())
	require.Equal(t, []string{"10.0.0.1:2377"}, lateJoin.GetRemoteAddrs())
}

func TestAckingTwiceHasNoSecondEffect(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 300 * time.Millisecond })
	clusterID, _ := b.cluster(t, "pending")
	mgrID := b.node(t, clusterID, store.RoleManagerNode, "10.0.0.1", "")
	mgr := b.connect(t, mgrID, 0)
	init := mgr.next()
	b.ack(t, mgrID, init.GetSeq(), initOutput("swarm-abc", "mgr-swarm-id"))
	gossip := mgr.next()
	mgr.idle()
	before := b.clusterState(t, clusterID)

	// The same acknowledgement again (say, a retry after a lost response), even with other
	// output: nothing changes and nothing new is queued.
	require.NoError(t, b.m.Ack(b.ctx, mgrID, init.GetSeq(), true, "", initOutput("swarm-other", "other")))
	require.NoError(t, b.m.Ack(b.ctx, mgrID, init.GetSeq(), false, "late failure", ""))
	after := b.clusterState(t, clusterID)
	require.Equal(t, before.SwarmID, after.SwarmID)
	require.Equal(t, before.ManagerJoinTokenSealed, after.ManagerJoinTokenSealed)
	require.Equal(t, "active", after.State)
	row, err := b.st.NodeCommand(b.ctx, mgrID, init.GetSeq())
	require.NoError(t, err)
	require.True(t, *row.OK)
	require.Equal(t, initOutput("swarm-abc", "mgr-swarm-id"), row.Output)
	require.Equal(t, "mgr-swarm-id", b.getNode(t, mgrID).SwarmNodeID)
	mgr.idle()
	rows, err := b.st.NodeCommandsAfter(b.ctx, mgrID, gossip.GetSeq(), 10)
	require.NoError(t, err)
	require.Empty(t, rows)
}

func TestAFailedSwarmInitPutsTheClusterInErrorAndAReconnectRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	mgrID := b.node(t, clusterID, store.RoleManagerNode, "10.0.0.1", "")
	mgr := b.connect(t, mgrID, 0)
	init := mgr.next()
	require.NoError(t, b.m.Ack(b.ctx, mgrID, init.GetSeq(), false, "docker is not running", ""))
	c := b.clusterState(t, clusterID)
	require.Equal(t, "error", c.State)
	require.Contains(t, c.Error, "docker is not running")

	mgr.cancel()
	mgr.ended(waitFor)
	again := b.connect(t, mgrID, init.GetSeq())
	require.NotNil(t, again.next().GetSwarmInit())
	require.Equal(t, "initializing", b.clusterState(t, clusterID).State)
}

func TestASwarmInitWhoseAckWasLostIsAskedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	mgrID := b.node(t, clusterID, store.RoleManagerNode, "10.0.0.1", "")
	mgr := b.connect(t, mgrID, 0)
	init := mgr.next()
	mgr.cancel()
	mgr.ended(waitFor)
	// The agent ran it and resumes after it, but the Ack with the tokens never arrived.
	again := b.connect(t, mgrID, init.GetSeq())
	retry := again.next()
	require.NotNil(t, retry.GetSwarmInit())
	require.Greater(t, retry.GetSeq(), init.GetSeq())
	b.ack(t, mgrID, retry.GetSeq(), initOutput("swarm-abc", "mgr-swarm-id"))
	require.Equal(t, "active", b.clusterState(t, clusterID).State)
}

// activeCluster makes an active cluster with a ready manager and a ready worker.
func activeCluster(t *testing.T, b *bundle) (clusterID, mgrID, workerID uuid.UUID) {
	clusterID, _ = b.cluster(t, "active")
	mgrID = b.node(t, clusterID, store.RoleManagerNode, "10.0.0.1", "swarm-mgr")
	workerID = b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "swarm-worker")
	return clusterID, mgrID, workerID
}

// inTx runs fn in a transaction of the bundle's store.
func (b *bundle) inTx(t *testing.T, fn func(q *store.Queries) error) {
	t.Helper()
	require.NoError(t, b.st.InTx(b.ctx, fn))
}

func TestRemovingANodeDrainsItLeavesRemovesRevokesAndCloses(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 300 * time.Millisecond })
	_, mgrID, workerID := activeCluster(t, b)
	b.exec(t, `INSERT INTO node_certificates (serial, node_id, expires_at) VALUES ('01', $1, now() + interval '1 day')`, workerID)
	mgr := b.connect(t, mgrID, 0)
	worker := b.connect(t, workerID, 0)
	// On connect both get their gossip configuration.
	require.Equal(t, []string{"10.0.0.2:7947"}, mgr.next().GetGossipConfig().GetPeers())
	require.Equal(t, []string{"10.0.0.1:7947"}, worker.next().GetGossipConfig().GetPeers())

	b.inTx(t, func(q *store.Queries) error {
		n, err := b.m.RemoveNode(b.ctx, q, workerID)
		require.Equal(t, store.NodeRemoving, n.State)
		return err
	})
	drain := mgr.next().GetNodeUpdate()
	require.Equal(t, "swarm-worker", drain.GetSwarmNodeId())
	require.Equal(t, "drain", drain.GetAvailability())
	b.ack(t, mgrID, 2, "{}")

	leave := worker.next()
	require.NotNil(t, leave.GetSwarmLeave())
	require.False(t, leave.GetSwarmLeave().GetForce(), "a worker leaves without force")
	b.ack(t, workerID, leave.GetSeq(), "{}")

	remove := mgr.next()
	require.Equal(t, "swarm-worker", remove.GetNodeRemove().GetSwarmNodeId())
	start := time.Now()
	b.ack(t, mgrID, remove.GetSeq(), "{}")
	err := worker.ended(time.Second)
	require.True(t, errors.Is(err, nodes.ErrClosed) || errors.Is(err, nodes.ErrNodeRemoved), "ended with %v", err)
	require.Less(t, time.Since(start), time.Second)

	n := b.getNode(t, workerID)
	require.Equal(t, store.NodeRemoved, n.State)
	require.NotNil(t, n.RemovedAt)
	var revoked bool
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT revoked_at IS NOT NULL FROM node_certificates WHERE serial = '01'`).Scan(&revoked))
	require.True(t, revoked)
	// The manager's gossip peers shrink.
	require.Empty(t, mgr.next().GetGossipConfig().GetPeers())
	mgr.idle()
}

func TestARemovedNodesSessionOnAnotherReplicaEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)
	b.enqueue(t, nodeID, update("x", "active"))
	a.next()
	// Another replica finished the removal: only the database and its notification say so.
	b.inTx(t, func(q *store.Queries) error {
		if err := q.MarkNodeRemoved(b.ctx, nodeID); err != nil {
			return err
		}
		return q.NotifyNodeCommands(b.ctx, nodeID, "")
	})
	require.ErrorIs(t, a.ended(time.Second), nodes.ErrNodeRemoved)
}

func TestANodeOutsideTheSwarmIsRemovedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)
	var n store.Node
	b.inTx(t, func(q *store.Queries) error {
		var err error
		n, err = b.m.RemoveNode(b.ctx, q, nodeID)
		return err
	})
	require.Equal(t, store.NodeRemoved, n.State)
	b.m.Close(nodeID)
	require.Error(t, a.ended(time.Second))
}

func TestTheLastManagerCannotBeRemovedWhileOtherNodesRemain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	err := b.st.InTx(b.ctx, func(q *store.Queries) error {
		_, err := b.m.RemoveNode(b.ctx, q, mgrID)
		return err
	})
	require.ErrorIs(t, err, nodes.ErrLastManager)
	require.Equal(t, store.NodeReady, b.getNode(t, mgrID).State)

	// Once the worker is gone, the manager leaves with force and the cluster starts over.
	b.inTx(t, func(q *store.Queries) error {
		_, err := b.m.RemoveNode(b.ctx, q, workerID)
		return err
	})
	mgr := b.connect(t, mgrID, 0)
	for {
		cmd := mgr.next()
		if u := cmd.GetNodeUpdate(); u != nil {
			b.ack(t, mgrID, cmd.GetSeq(), "{}")
			break
		}
	}
	b.inTx(t, func(q *store.Queries) error {
		// The worker is away: the health loop would give up on it; here its leave is acked.
		rows, err := q.NodeCommandsAfter(b.ctx, workerID, 0, 10)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		return nil
	})
	require.NoError(t, b.m.Ack(b.ctx, workerID, 1, false, "gone", ""))
	remove := mgr.next()
	for remove.GetNodeRemove() == nil {
		remove = mgr.next()
	}
	b.ack(t, mgrID, remove.GetSeq(), "{}")
	require.Equal(t, store.NodeRemoved, b.getNode(t, workerID).State)

	b.inTx(t, func(q *store.Queries) error {
		_, err := b.m.RemoveNode(b.ctx, q, mgrID)
		return err
	})
	leave := mgr.next()
	for leave.GetSwarmLeave() == nil {
		leave = mgr.next()
	}
	require.True(t, leave.GetSwarmLeave().GetForce())
	b.ack(t, mgrID, leave.GetSeq(), "{}")
	require.Equal(t, store.NodeRemoved, b.getNode(t, mgrID).State)
	c := b.clusterState(t, b.getNode(t, mgrID).ClusterID)
	require.Equal(t, "pending", c.State)
	require.Empty(t, c.SwarmID)
}

func TestDrainActivateAndLabelsGoThroughAManager(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	mgr := b.connect(t, mgrID, 0)
	mgr.next() // gossip configuration

	var n store.Node
	b.inTx(t, func(q *store.Queries) error {
		var err error
		n, err = b.m.DrainNode(b.ctx, q, workerID)
		return err
	})
	require.Equal(t, store.NodeDraining, n.State)
	require.Equal(t, "drain", n.Availability)
	u := mgr.next().GetNodeUpdate()
	require.Equal(t, "swarm-worker", u.GetSwarmNodeId())
	require.Equal(t, "drain", u.GetAvailability())

	b.inTx(t, func(q *store.Queries) error {
		var err error
		n, err = b.m.SetNodeLabels(b.ctx, q, workerID, map[string]string{"edge": "true"})
		return err
	})
	require.Equal(t, map[string]string{"edge": "true"}, n.Labels)
	u = mgr.next().GetNodeUpdate()
	require.Equal(t, map[string]string{"edge": "true"}, u.GetLabels())
	require.Empty(t, u.GetAvailability(), "labels alone keep the availability")

	b.inTx(t, func(q *store.Queries) error {
		var err error
		n, err = b.m.ActivateNode(b.ctx, q, workerID)
		return err
	})
	require.Equal(t, store.NodeReady, n.State)
	require.Equal(t, "active", mgr.next().GetNodeUpdate().GetAvailability())

	// Drained and silent is down; drained and back is draining again.
	enrolling := b.node(t, n.ClusterID, store.RoleWorkerNode, "10.0.0.9", "")
	err := b.st.InTx(b.ctx, func(q *store.Queries) error {
		_, err := b.m.DrainNode(b.ctx, q, enrolling)
		return err
	})
	require.ErrorIs(t, err, nodes.ErrNotJoined)
}

func TestJoiningAppliesTheEnrollmentLabels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, mgrID, _ := activeCluster(t, b)
	newID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.5", "")
	b.exec(t, `UPDATE nodes SET labels = '{"edge": "true"}' WHERE id = $1`, newID)
	mgr := b.connect(t, mgrID, 0)
	mgr.next() // gossip configuration
	a := b.connect(t, newID, 0)
	join := a.next()
	b.ack(t, newID, join.GetSeq(), `{"swarm_node_id": "swarm-new"}`)
	var labels *agentv1.NodeUpdate
	for labels == nil {
		labels = mgr.next().GetNodeUpdate()
	}
	require.Equal(t, "swarm-new", labels.GetSwarmNodeId())
	require.Equal(t, map[string]string{"edge": "true"}, labels.GetLabels())
}

func TestAStuckRemovalOfAVanishedNodeFinishesByForce(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) {
		o.NodeTTL, o.NodeGrace = 200*time.Millisecond, 100*time.Millisecond
		o.HealthInterval = 20 * time.Millisecond
	})
	_, mgrID, workerID := activeCluster(t, b)
	mgr := b.connect(t, mgrID, 0)
	mgr.next() // gossip configuration
	b.inTx(t, func(q *store.Queries) error {
		_, err := b.m.RemoveNode(b.ctx, q, workerID)
		return err
	})
	drain := mgr.next()
	b.ack(t, mgrID, drain.GetSeq(), "{}")
	// The manager keeps reporting; the worker never answers its swarm_leave.
	var remove *agentv1.NodeRemove
	deadline := time.Now().Add(waitFor)
	for remove == nil {
		require.True(t, time.Now().Before(deadline), "no node_remove")
		_, err := b.m.Report(b.ctx, mgrID, &agentv1.ReportRequest{})
		require.NoError(t, err)
		select {
		case r := <-mgr.msgs:
			remove = r.GetCommand().GetNodeRemove()
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.True(t, remove.GetForce())
	rows, err := b.st.NodeCommandsAfter(context.Background(), workerID, 0, 10)
	require.NoError(t, err)
	require.False(t, *rows[len(rows)-1].OK)
}
