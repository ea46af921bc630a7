package e2e_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/e2e"
	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
)

// formCluster starts a control plane (with tweak applied to its config) and makes a swarm of
// the nodes by running the dashboard's setup command on each: node 1 is the manager and
// edge, the others workers. It returns when every node is ready in the swarm.
func formCluster(t testing.TB, nodes *e2e.Nodes, phase func(string), tweak func(*config.Config)) *clusterRun {
	t.Helper()
	ctx := t.Context()
	downloads := t.TempDir()
	buildStatic(t, downloads, "skypanel-agent", "skypanel/agent/cmd/skypanel-agent")
	buildStatic(t, downloads, "skypanel-installer", "skypanel/installer/cmd/skypanel-installer")
	phase("build the agent and installer")

	env := testenv.Start(t, testenv.WithHost(e2e.HostAddr), testenv.WithConfig(func(c *config.Config) {
		c.ReportInterval, c.NodeTTL, c.NodeGrace = reportInterval, nodeTTL, nodeGrace
		c.DownloadsDir = downloads
		if tweak != nil {
			tweak(c)
		}
	}))
	admin := env.Admin(t)
	api := testenv.Client(env, clusterv1connect.NewClusterServiceClient, admin.Token)
	cluster, err := api.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "e2e"}))
	require.NoError(t, err)
	clusterID := cluster.Msg.GetCluster().GetId()

	c := &clusterRun{t: t, nodes: nodes, env: env, api: api, admin: admin, clusterID: clusterID}
	t.Cleanup(c.dumpOnFailure)

	// 1. Enroll: the setup command exactly as the dashboard hands it out, plus only what this
	// machine needs (the node's own Docker socket, directories inside the node's dir, no
	// apt-get). Node 1 gets the manager token, the others single-use worker tokens.
	commands := map[int]string{}
	for i := 1; i <= 3; i++ {
		req := &clusterv1.CreateEnrollmentTokenRequest{ClusterId: clusterID, Role: agentv1.NodeRole_NODE_ROLE_WORKER, UsageLimit: 1}
		if i == 1 {
			req.Role, req.Labels = agentv1.NodeRole_NODE_ROLE_MANAGER, map[string]string{"edge": "true"}
		}
		resp, err := api.CreateEnrollmentToken(ctx, connect.NewRequest(req))
		require.NoError(t, err)
		cmd := resp.Msg.GetSetupCommand()
		require.Contains(t, cmd, env.URL+"/setup-worker.sh")
		require.Contains(t, cmd, resp.Msg.GetSecret())
		commands[i] = cmd
		if i == 2 {
			c.usedToken = resp.Msg.GetSecret()
		}
	}
	var wg sync.WaitGroup
	outputs := make([]string, 4)
	errs := make([]error, 4)
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := commands[i] + fmt.Sprintf(" --docker-host %s --data-dir %s --prefix %s --skip-docker-install",
				nodes.DockerHost(i), c.dataDir(i), c.prefix(i))
			octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			outputs[i], errs[i] = nodes.Exec(octx, i, "sh", "-c", cmd)
		}()
	}
	wg.Wait()
	for i := 1; i <= 3; i++ {
		require.NoError(t, errs[i], "setup command on node %d:\n%s", i, outputs[i])
		require.Contains(t, outputs[i], "advertise address "+nodes.Addr(i)+" (interface with the default route)",
			"the installer picks the node's own address on node %d:\n%s", i, outputs[i])
		require.Contains(t, outputs[i], "service: started the agent in the background", "node %d:\n%s", i, outputs[i])
	}
	phase("run the setup command on three nodes")

	// 2. The swarm forms: one manager (with the token's label), two workers.
	c.waitNodes(90*time.Second, "three ready nodes in the swarm", func(ns map[string]*clusterv1.Node) bool {
		if len(ns) != 3 {
			return false
		}
		for _, n := range ns {
			if n.GetState() != clusterv1.NodeState_NODE_STATE_READY || n.GetSwarmNodeId() == "" {
				return false
			}
		}
		return true
	})
	ns := c.list()
	for i := 1; i <= 3; i++ {
		n := ns[host(i)]
		c.ids[i] = n.GetId()
		require.Equal(t, nodes.Addr(i), n.GetAdvertiseAddr(), "node %d's advertise address", i)
		wantRole := agentv1.NodeRole_NODE_ROLE_WORKER
		if i == 1 {
			wantRole = agentv1.NodeRole_NODE_ROLE_MANAGER
		}
		require.Equal(t, wantRole, n.GetRole(), "node %d's role", i)
	}
	require.Equal(t, map[string]string{"edge": "true"}, ns[host(1)].GetLabels(), "the manager token's labels")
	got, err := api.GetCluster(ctx, connect.NewRequest(&clusterv1.GetClusterRequest{ClusterId: clusterID}))
	require.NoError(t, err)
	require.Equal(t, clusterv1.ClusterState_CLUSTER_STATE_ACTIVE, got.Msg.GetCluster().GetState())
	require.EqualValues(t, 1, got.Msg.GetCluster().GetManagerCount())
	require.EqualValues(t, 2, got.Msg.GetCluster().GetWorkerCount())
	require.NotEmpty(t, got.Msg.GetCluster().GetSwarmId())
	eventually(t, 30*time.Second, "docker node ls on the manager listing one leader and two workers, all ready", func() bool {
		out, err := nodes.Docker(ctx, 1, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
		return err == nil && trimmedLines(out) == "skpn1 Ready Leader\nskpn2 Ready\nskpn3 Ready"
	})
	eventually(t, 30*time.Second, "the manager's swarm node carrying the token's label", func() bool {
		return c.swarmNode("skpn1", "{{json .Spec.Labels}}") == `{"edge":"true"}`
	})
	phase("the swarm forms")
	return c
}
