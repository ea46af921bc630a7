package api_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/pki"
)

// nodeEvents counts activity rows of a type about a node.
func (f *swarmFixture) nodeEvents(t *testing.T, eventType, nodeID string) int {
	t.Helper()
	var n int
	require.NoError(t, f.env.Store.Pool().QueryRow(f.ctx, `SELECT count(*) FROM activity_events
		WHERE event_type = $1 AND entity_type = 'node' AND entity_id = $2 AND organization_id IS NULL`, eventType, nodeID).Scan(&n))
	return n
}

func TestAdminsDrainActivateAndLabelNodesThroughAManager(t *testing.T) {
	f := setupSwarm(t)
	worker := f.join(t, "w1", "10.0.0.2")
	id := worker.agent.NodeID.String()

	drained, err := f.admin.DrainNode(f.ctx, connect.NewRequest(&clusterv1.DrainNodeRequest{NodeId: id}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.NodeState_NODE_STATE_DRAINING, drained.Msg.GetNode().GetState())
	u := f.manager.next().GetNodeUpdate()
	require.Equal(t, "swarm-w1", u.GetSwarmNodeId())
	require.Equal(t, "drain", u.GetAvailability())
	require.Equal(t, 1, f.nodeEvents(t, "cluster.node.drained", id))

	labelled, err := f.admin.SetNodeLabels(f.ctx, connect.NewRequest(&clusterv1.SetNodeLabelsRequest{
		NodeId: id, Labels: map[string]string{"edge": "true"},
	}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"edge": "true"}, labelled.Msg.GetNode().GetLabels())
	require.Equal(t, map[string]string{"edge": "true"}, f.manager.next().GetNodeUpdate().GetLabels())
	require.Equal(t, 1, f.nodeEvents(t, "cluster.node.labels_set", id))

	active, err := f.admin.ActivateNode(f.ctx, connect.NewRequest(&clusterv1.ActivateNodeRequest{NodeId: id}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.NodeState_NODE_STATE_READY, active.Msg.GetNode().GetState())
	require.Equal(t, "active", f.manager.next().GetNodeUpdate().GetAvailability())
	require.Equal(t, 1, f.nodeEvents(t, "cluster.node.activated", id))

	_, err = f.admin.DrainNode(f.ctx, connect.NewRequest(&clusterv1.DrainNodeRequest{NodeId: "00000000-0000-0000-0000-000000000001"}))
	requireConnectCode(t, err, connect.CodeNotFound, "node not found")
}

func TestRemovingANodeTakesItOutOfTheSwarmAndLocksItOut(t *testing.T) {
	f := setupSwarm(t)
	worker := f.join(t, "w1", "10.0.0.2")
	id := worker.agent.NodeID.String()

	removing, err := f.admin.RemoveNode(f.ctx, connect.NewRequest(&clusterv1.RemoveNodeRequest{NodeId: id}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.NodeState_NODE_STATE_REMOVING, removing.Msg.GetNode().GetState())
	require.Equal(t, 1, f.nodeEvents(t, "cluster.node.removed", id))

	drain := f.manager.next()
	require.Equal(t, "drain", drain.GetNodeUpdate().GetAvailability())
	f.manager.ack(drain.GetSeq(), "{}")
	leave := worker.next()
	require.NotNil(t, leave.GetSwarmLeave())
	worker.ack(leave.GetSeq(), "{}")
	remove := f.manager.next()
	require.Equal(t, "swarm-w1", remove.GetNodeRemove().GetSwarmNodeId())
	f.manager.ack(remove.GetSeq(), "{}")

	requireConnectCode(t, worker.ended(time.Second), connect.CodePermissionDenied, "removed")
	node, err := f.admin.GetNode(f.ctx, connect.NewRequest(&clusterv1.GetNodeRequest{NodeId: id}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.NodeState_NODE_STATE_REMOVED, node.Msg.GetNode().GetState())
	require.Nil(t, node.Msg.GetNode().GetCertificateExpiresAt(), "no valid certificate left")
	list, err := f.admin.ListNodes(f.ctx, connect.NewRequest(&clusterv1.ListNodesRequest{ClusterId: f.clusterID.String()}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetNodes(), 1, "removed nodes leave the list")

	// Its certificate no longer opens the agent listener.
	_, csr, err := pki.NewNodeKey("w1")
	require.NoError(t, err)
	_, err = worker.agent.Client.Renew(f.ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "")
	// And the manager's gossip no longer names it.
	require.Empty(t, f.manager.next().GetGossipConfig().GetPeers())
}

func TestRemovingTheOnlyManagerOfABusySwarmIsRefused(t *testing.T) {
	f := setupSwarm(t)
	f.join(t, "w1", "10.0.0.2")
	_, err := f.admin.RemoveNode(f.ctx, connect.NewRequest(&clusterv1.RemoveNodeRequest{NodeId: f.manager.agent.NodeID.String()}))
	requireConnectCode(t, err, connect.CodeFailedPrecondition, "last manager")
}

func TestWatchNodesSendsTheListNowAndOnEveryChange(t *testing.T) {
	f := setupSwarm(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	stream, err := f.admin.WatchNodes(ctx, connect.NewRequest(&clusterv1.WatchNodesRequest{ClusterId: f.clusterID.String()}))
	require.NoError(t, err)
	lists := make(chan []*clusterv1.Node, 100)
	go func() {
		for stream.Receive() {
			lists <- stream.Msg().GetNodes()
		}
		close(lists)
	}()
	waitList := func(what string, ok func([]*clusterv1.Node) bool) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case l, open := <-lists:
				require.True(t, open, "watch ended")
				if ok(l) {
					return
				}
			case <-timeout:
				t.Fatalf("no node list with %s", what)
			}
		}
	}
	waitList("the manager", func(l []*clusterv1.Node) bool { return len(l) == 1 })

	worker := f.join(t, "w1", "10.0.0.2")
	waitList("the joined worker", func(l []*clusterv1.Node) bool {
		return len(l) == 2 && l[1].GetSwarmNodeId() == "swarm-w1"
	})
	_, err = f.admin.DrainNode(f.ctx, connect.NewRequest(&clusterv1.DrainNodeRequest{NodeId: worker.agent.NodeID.String()}))
	require.NoError(t, err)
	waitList("the drained worker", func(l []*clusterv1.Node) bool {
		return len(l) == 2 && l[1].GetState() == clusterv1.NodeState_NODE_STATE_DRAINING
	})
}

func TestGetNodeMetricsReturnsSeriesAtTheAskedStep(t *testing.T) {
	f := setupSwarm(t)
	id := f.manager.agent.NodeID
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	_, err := f.env.Store.Pool().Exec(f.ctx, `INSERT INTO node_metrics (node_id, sampled_at, cpu_percent, memory_used_bytes,
		memory_total_bytes, disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes, load1)
		SELECT $1, $2::timestamptz + i * interval '10 seconds', 25, 1, 4, 0, 0, 0, 0, 0.5 FROM generate_series(0, 119) i`, id, start)
	require.NoError(t, err)

	resp, err := f.admin.GetNodeMetrics(f.ctx, connect.NewRequest(&clusterv1.GetNodeMetricsRequest{
		NodeId: id.String(), Since: timestamppb.New(start), Until: timestamppb.New(start.Add(20 * time.Minute)),
		Step: durationpb.New(5 * time.Minute), Names: []string{"cpu_percent", "memory_percent"},
	}))
	require.NoError(t, err)
	series := resp.Msg.GetSeries()
	require.Len(t, series, 2)
	require.Equal(t, "cpu_percent", series[0].GetName())
	require.NotEmpty(t, series[0].GetPoints())
	for i, p := range series[0].GetPoints() {
		require.InDelta(t, 25, p.GetValue(), 0.001)
		if i > 0 {
			require.Equal(t, 5*time.Minute, p.GetAt().AsTime().Sub(series[0].GetPoints()[i-1].GetAt().AsTime()))
		}
	}
	require.InDelta(t, 25, series[1].GetPoints()[0].GetValue(), 0.001, "memory_percent: 1 of 4")

	_, err = f.admin.GetNodeMetrics(f.ctx, connect.NewRequest(&clusterv1.GetNodeMetricsRequest{
		NodeId: id.String(), Since: timestamppb.New(start), Until: timestamppb.New(start.Add(-time.Minute)),
	}))
	requireConnectCode(t, err, connect.CodeInvalidArgument, "since")
	_, err = f.admin.GetNodeMetrics(f.ctx, connect.NewRequest(&clusterv1.GetNodeMetricsRequest{NodeId: "00000000-0000-0000-0000-000000000001"}))
	requireConnectCode(t, err, connect.CodeNotFound, "node")
}

func TestOnlyPlatformAdminsSeeNodes(t *testing.T) {
	f := setupSwarm(t)
	someone := f.env.NewUser(t, "someone@example.com")
	c := testenv.Client(f.env, clusterv1connect.NewClusterServiceClient, someone.Token)
	_, err := c.ListNodes(f.ctx, connect.NewRequest(&clusterv1.ListNodesRequest{ClusterId: f.clusterID.String()}))
	requireConnectCode(t, err, connect.CodePermissionDenied, "platform admins")
}
