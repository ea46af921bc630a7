package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
)

// agentStream is a simulated agent's open Connect stream over the agent listener.
type agentStream struct {
	t        *testing.T
	agent    *testenv.SimAgent
	commands chan *agentv1.Command
	done     chan error
	cancel   context.CancelFunc
}

// openStream connects a simulated agent, resuming after afterSeq.
func openStream(t *testing.T, a *testenv.SimAgent, afterSeq int64) *agentStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := a.Client.Connect(ctx, connect.NewRequest(&agentv1.ConnectRequest{AfterSeq: afterSeq, AgentVersion: "test"}))
	require.NoError(t, err)
	s := &agentStream{t: t, agent: a, commands: make(chan *agentv1.Command, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		for stream.Receive() {
			if c := stream.Msg().GetCommand(); c != nil {
				s.commands <- c
			}
		}
		s.done <- stream.Err()
	}()
	t.Cleanup(cancel)
	return s
}

// next waits for the next command.
func (s *agentStream) next() *agentv1.Command {
	s.t.Helper()
	select {
	case c := <-s.commands:
		return c
	case err := <-s.done:
		s.t.Fatalf("stream of node %s ended while waiting for a command: %v", s.agent.NodeID, err)
	case <-time.After(15 * time.Second):
		s.t.Fatalf("no command for node %s within 15s", s.agent.NodeID)
	}
	return nil
}

// ended waits for the stream to end and returns its error.
func (s *agentStream) ended(within time.Duration) error {
	s.t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(within):
		s.t.Fatalf("stream of node %s still open after %s", s.agent.NodeID, within)
		return nil
	}
}

func (s *agentStream) ack(seq int64, output string) {
	s.t.Helper()
	_, err := s.agent.Client.Ack(context.Background(), connect.NewRequest(&agentv1.AckRequest{Seq: seq, Ok: true, Output: output}))
	require.NoError(s.t, err)
}

// swarmFixture is a control plane with a cluster whose first manager made the swarm over
// the agent listener, and an admin client.
type swarmFixture struct {
	env       *testenv.Env
	ctx       context.Context
	admin     clusterv1connect.ClusterServiceClient
	adminUser *testenv.User
	clusterID uuid.UUID
	manager   *agentStream
}

func setupSwarm(t *testing.T, options ...testenv.Option) *swarmFixture {
	t.Helper()
	env := testenv.Start(t, options...)
	ctx := context.Background()
	admin := env.Admin(t)
	clusterID := env.NewCluster(t, admin, "prod")
	mgr, err := env.Enroll(ctx, env.EnrollmentToken(t, admin, clusterID, agentv1.NodeRole_NODE_ROLE_MANAGER, 1), testenv.Facts("mgr", "10.0.0.1"))
	require.NoError(t, err)
	stream := openStream(t, mgr, 0)
	init := stream.next()
	require.Equal(t, "10.0.0.1", init.GetSwarmInit().GetAdvertiseAddr())
	out, _ := json.Marshal(map[string]string{"swarm_id": "swarm-1", "swarm_node_id": "swarm-mgr",
		"manager_join_token": "SWMTKN-1-m", "worker_join_token": "SWMTKN-1-w"})
	stream.ack(init.GetSeq(), string(out))
	require.NotNil(t, stream.next().GetGossipConfig())
	return &swarmFixture{env: env, ctx: ctx, admin: testenv.Client(env, clusterv1connect.NewClusterServiceClient, admin.Token),
		adminUser: admin, clusterID: clusterID, manager: stream}
}

// join enrolls a worker, connects it and acknowledges its swarm join.
func (f *swarmFixture) join(t *testing.T, hostname, addr string) *agentStream {
	t.Helper()
	a, err := f.env.Enroll(f.ctx, f.env.EnrollmentToken(t, f.adminUser, f.clusterID, agentv1.NodeRole_NODE_ROLE_WORKER, 1),
		testenv.Facts(hostname, addr))
	require.NoError(t, err)
	s := openStream(t, a, 0)
	join := s.next().GetSwarmJoin()
	require.Equal(t, "SWMTKN-1-w", join.GetJoinToken())
	require.Equal(t, []string{"10.0.0.1:2377"}, join.GetRemoteAddrs())
	s.ack(1, `{"swarm_node_id": "swarm-`+hostname+`"}`)
	require.NotNil(t, s.next().GetGossipConfig())
	require.Equal(t, []string{addr + ":7947"}, f.manager.next().GetGossipConfig().GetPeers())
	return s
}

func TestAgentsMakeAndJoinTheSwarmOverTheAgentListener(t *testing.T) {
	f := setupSwarm(t)
	cluster, err := f.admin.GetCluster(f.ctx, connect.NewRequest(&clusterv1.GetClusterRequest{ClusterId: f.clusterID.String()}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.ClusterState_CLUSTER_STATE_ACTIVE, cluster.Msg.GetCluster().GetState())
	require.Equal(t, "swarm-1", cluster.Msg.GetCluster().GetSwarmId())

	worker := f.join(t, "w1", "10.0.0.2")
	node, err := f.admin.GetNode(f.ctx, connect.NewRequest(&clusterv1.GetNodeRequest{NodeId: worker.agent.NodeID.String()}))
	require.NoError(t, err)
	require.Equal(t, "swarm-w1", node.Msg.GetNode().GetSwarmNodeId())
	require.Equal(t, clusterv1.NodeState_NODE_STATE_READY, node.Msg.GetNode().GetState())

	// Reports come back with the interval, and show up on the node once written.
	resp, err := worker.agent.Client.Report(f.ctx, connect.NewRequest(&agentv1.ReportRequest{
		Host: &agentv1.HostMetrics{CpuPercent: 42, MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 4 << 30},
	}))
	require.NoError(t, err)
	require.Equal(t, int32(10), resp.Msg.GetIntervalSeconds())
	testenv.WaitFor(t, 20*time.Second, "the report on the node", func() bool {
		node, err := f.admin.GetNode(f.ctx, connect.NewRequest(&clusterv1.GetNodeRequest{NodeId: worker.agent.NodeID.String()}))
		require.NoError(t, err)
		return node.Msg.GetNode().GetLast().GetCpuPercent() == 42 && node.Msg.GetNode().GetLastSeenAt() != nil
	})

	// Acknowledging a command that was never sent is refused; acknowledging again is fine.
	_, err = worker.agent.Client.Ack(f.ctx, connect.NewRequest(&agentv1.AckRequest{Seq: 99, Ok: true}))
	requireConnectCode(t, err, connect.CodeNotFound, "no such command")
	worker.ack(1, `{"swarm_node_id": "something else"}`)
	node, err = f.admin.GetNode(f.ctx, connect.NewRequest(&clusterv1.GetNodeRequest{NodeId: worker.agent.NodeID.String()}))
	require.NoError(t, err)
	require.Equal(t, "swarm-w1", node.Msg.GetNode().GetSwarmNodeId())
}

func TestASecondConnectOfANodeEndsItsFirstStream(t *testing.T) {
	f := setupSwarm(t)
	second := openStream(t, f.manager.agent, 2)
	err := f.manager.ended(5 * time.Second)
	requireConnectCode(t, err, connect.CodeAborted, "replaced")

	// The new stream is the live one.
	_, err = f.admin.DrainNode(f.ctx, connect.NewRequest(&clusterv1.DrainNodeRequest{NodeId: f.manager.agent.NodeID.String()}))
	require.NoError(t, err)
	require.Equal(t, "drain", second.next().GetNodeUpdate().GetAvailability())
}
