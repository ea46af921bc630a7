package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/e2e"
	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/pki"
)

// Health timings of the control plane under test: short, so that faults show within seconds.
const (
	reportInterval = time.Second
	nodeTTL        = 3 * time.Second
	nodeGrace      = 2 * time.Second
	// healthSlack covers what comes on top of TTL plus grace before a silent node is down:
	// the health pass interval, and gossip declaring the node dead (memberlist's suspicion
	// timeout on a LAN is a few seconds).
	healthSlack = 15 * time.Second
)

// TestClusterOfThreeRealNodes is issue 4's end-to-end test: three real Docker nodes, each
// enrolled by running the dashboard's setup command inside its network namespace, form a
// swarm through their agents; then agents are killed, nodes are cut off, the control plane
// restarts and bad credentials are tried, and the platform must tell what happened.
func TestClusterOfThreeRealNodes(t *testing.T) {
	nodes := e2e.Up(t, 3)
	ctx := t.Context()
	started := time.Now()
	phase := phases(t)

	c := formCluster(t, nodes, phase, nil)
	env, api, clusterID := c.env, c.api, c.clusterID

	// Metrics through the API.
	for i := 1; i <= 3; i++ {
		eventually(t, 30*time.Second, fmt.Sprintf("cpu and memory metrics of node %d", i), func() bool {
			resp, err := api.GetNodeMetrics(ctx, connect.NewRequest(&clusterv1.GetNodeMetricsRequest{
				NodeId: c.ids[i], Names: []string{"cpu_percent", "memory_used_bytes"}}))
			if err != nil {
				return false
			}
			points := map[string]int{}
			for _, s := range resp.Msg.GetSeries() {
				points[s.GetName()] = len(s.GetPoints())
			}
			return points["cpu_percent"] > 0 && points["memory_used_bytes"] > 0
		})
	}
	phase("metrics visible")

	// Every agent's gossip sees the two others: what tells "dead" from "cut off" below.
	eventually(t, 60*time.Second, "every node's report listing the two others as reachable", func() bool {
		for i := 1; i <= 3; i++ {
			if got := c.reportedPeers(i, "reachable_peers"); !slices.Equal(got, c.idsExcept(i)) {
				return false
			}
		}
		return true
	})
	phase("gossip up")

	// 3a. kill -9 a worker's agent: down within TTL + grace (+ slack), ready after a restart.
	pid := c.agentPid(2)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	eventually(t, 10*time.Second, "the killed agent gone", func() bool { return !alive(pid) })
	took := c.waitNode(2, nodeTTL+nodeGrace+healthSlack, "node 2 down, its peers unable to reach it",
		clusterv1.NodeState_NODE_STATE_DOWN, c.idsExcept(2))
	t.Logf("node 2 down %s after its agent was killed (TTL %s + grace %s)", took.Round(100*time.Millisecond), nodeTTL, nodeGrace)
	nodes.Spawn(2, "agent", c.prefix(2)+"/skypanel-agent", "run", "--data-dir", c.dataDir(2), "--docker-host", nodes.DockerHost(2))
	c.waitNode(2, 30*time.Second, "node 2 ready again after its agent restarted", clusterv1.NodeState_NODE_STATE_READY, nil)
	phase("kill -9 an agent, restart it")

	// 3b. Cut node 3 off from the control plane only: unreachable, not down, while its peers
	// still see it; the contract records only peers that cannot reach a node, so
	// unreachable_from stays empty.
	c.cutFromControlPlane(3)
	took = c.waitNode(3, nodeTTL+nodeGrace+healthSlack, "node 3 unreachable (cut off from the control plane only)",
		clusterv1.NodeState_NODE_STATE_UNREACHABLE, nil)
	t.Logf("node 3 unreachable %s after its control-plane link was cut", took.Round(100*time.Millisecond))
	for _, i := range []int{1, 2} {
		require.Contains(t, c.reportedPeers(i, "reachable_peers"), c.ids[3], "node %d's gossip still reaches node 3", i)
		require.NotContains(t, c.reportedPeers(i, "unreachable_peers"), c.ids[3])
	}
	c.healToControlPlane(3)
	c.waitNode(3, 30*time.Second, "node 3 ready again after its control-plane link healed", clusterv1.NodeState_NODE_STATE_READY, nil)
	phase("cut a node from the control plane only")

	// A node cut off completely is down, and its peers' gossip says they cannot reach it.
	nodes.Cut(3)
	took = c.waitNode(3, nodeTTL+nodeGrace+healthSlack, "node 3 down (link cut), unreachable from both peers",
		clusterv1.NodeState_NODE_STATE_DOWN, c.idsExcept(3))
	t.Logf("node 3 down %s after its link was cut", took.Round(100*time.Millisecond))
	nodes.Heal(3)
	c.waitNode(3, 45*time.Second, "node 3 ready again, its peers reaching it again", clusterv1.NodeState_NODE_STATE_READY, nil)
	phase("cut a node completely")

	// 3c. Restart the control plane while commands wait for a node that cannot get them, and
	// one ran but its acknowledgement was lost. The manager carries out label and availability
	// changes. First only its packets to the control plane are dropped: it receives a label
	// change for node 2 and runs it, but its acknowledgement never arrives. Then the inbound
	// direction too: a second label change and a drain of node 3 cannot be delivered. The
	// control plane restarts, the manager's link heals: every command ran exactly once, none
	// is lost, none is added.
	setLabels := func(i int, labels map[string]string) {
		t.Helper()
		_, err := api.SetNodeLabels(ctx, connect.NewRequest(&clusterv1.SetNodeLabelsRequest{NodeId: c.ids[i], Labels: labels}))
		require.NoError(t, err)
	}
	zoneOf2 := func() string { return c.swarmNode("skpn2", "{{index .Spec.Labels \"zone\"}}") }
	c.cutFromControlPlane(1, "out")
	setLabels(2, map[string]string{"zone": "a"})
	ackLost := c.open(c.commands())
	require.Len(t, ackLost, 1, "one node update for the manager")
	eventually(t, 30*time.Second, "the manager running the label change and recording it as done", func() bool {
		return c.lastAcked(1) == ackLost[0].seq && zoneOf2() == "a"
	})
	c.cutFromControlPlane(1, "in")
	setLabels(2, map[string]string{"zone": "b"})
	_, err := api.DrainNode(ctx, connect.NewRequest(&clusterv1.DrainNodeRequest{NodeId: c.ids[3]}))
	require.NoError(t, err)
	before := c.commands()
	open := c.open(before)
	require.Len(t, open, 3, "three node updates open for the manager: %v", before)
	undelivered := open[1:]
	require.Equal(t, ackLost[0], open[0], "the one that ran is still open: its acknowledgement was lost")
	for _, q := range open {
		require.Equal(t, c.ids[1], q.node)
		require.Equal(t, "node_update", q.kind)
	}
	streams := map[int]int{}
	for i := 1; i <= 3; i++ {
		streams[i] = c.logCount(i, "command stream open")
	}
	restartStart := time.Now()
	env.Restart(t)
	api = testenv.Client(env, clusterv1connect.NewClusterServiceClient, c.admin.Token)
	c.api = api
	t.Logf("control plane restarted in %s", time.Since(restartStart).Round(100*time.Millisecond))
	for _, i := range []int{2, 3} {
		eventually(t, 30*time.Second, fmt.Sprintf("node %d's agent reopening its command stream", i), func() bool {
			return c.logCount(i, "command stream open") > streams[i]
		})
	}
	require.Equal(t, "a", zoneOf2(), "the second label change is not applied while the manager is cut off")
	require.Equal(t, "active", c.swarmNode("skpn3", "{{.Spec.Availability}}"), "nor the drain")
	c.healToControlPlane(1, "in", "out")
	eventually(t, 60*time.Second, "the manager's agent reopening its command stream", func() bool {
		return c.logCount(1, "command stream open") > streams[1]
	})
	eventually(t, 30*time.Second, "node 2's second label and node 3's drain applied", func() bool {
		return zoneOf2() == "b" && c.swarmNode("skpn3", "{{.Spec.Availability}}") == "drain"
	})
	c.waitNode(3, 30*time.Second, "node 3 draining", clusterv1.NodeState_NODE_STATE_DRAINING, nil)
	after := c.commands()
	eventually(t, 30*time.Second, "every command acknowledged", func() bool {
		after = c.commands()
		return len(c.open(after)) == 0
	})
	require.Equal(t, keys(before), keys(after), "the restart neither lost nor added commands")
	for _, q := range open {
		require.Equal(t, 1, c.runs(1)[q.seq], "command %d ran exactly once on the manager", q.seq)
	}
	// Connecting again after ackLost told the control plane the agent finished it; its own
	// acknowledgement (with the outcome) never arrived.
	lost := after[ackLost[0].key()]
	outcome := "unknown"
	if lost.ok != nil {
		outcome = strconv.FormatBool(*lost.ok)
	}
	t.Logf("command %d, whose acknowledgement was lost: acknowledged on reconnect, outcome %s", lost.seq, outcome)
	for _, q := range undelivered {
		a := after[q.key()]
		require.NotNil(t, a.ok, "command %d acknowledged with its outcome", q.seq)
		require.True(t, *a.ok, "command %d succeeded: %s", q.seq, a.err)
	}
	for i := 1; i <= 3; i++ {
		require.Equal(t, maxSeq(after, c.ids[i]), c.lastAcked(i), "node %d's agent acknowledged its last command", i)
	}
	phase("restart the control plane with commands waiting")

	// 3d. Refusals, each with a clear message: used, expired and foreign tokens at enrollment,
	// and a removed node's certificate.
	expired, err := api.CreateEnrollmentToken(ctx, connect.NewRequest(&clusterv1.CreateEnrollmentTokenRequest{
		ClusterId: clusterID, Role: agentv1.NodeRole_NODE_ROLE_WORKER}))
	require.NoError(t, err)
	_, err = env.Store.Pool().Exec(ctx, `UPDATE enrollment_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`,
		expired.Msg.GetToken().GetId())
	require.NoError(t, err)
	otherCA, err := pki.NewCA("another control plane", time.Now())
	require.NoError(t, err)
	for _, tc := range []struct{ name, token, want string }{
		{"used", c.usedToken, "the control plane refused: this enrollment token was already used (1 of 1 uses)"},
		{"expired", expired.Msg.GetSecret(), "the control plane refused: this enrollment token expired at "},
		{"wrong-pin", pki.NewEnrollmentToken(otherCA.Pin()).String(), "control plane CA does not match the token's pin"},
	} {
		dir := filepath.Join(nodes.Dir(2), "enroll-"+tc.name)
		out, err := nodes.Exec(ctx, 2, c.prefix(2)+"/skypanel-agent", "enroll", "--agent-url", env.AgentURL,
			"--token", tc.token, "--advertise-addr", nodes.Addr(2), "--data-dir", dir)
		var exitErr *exec.ExitError
		require.True(t, errors.As(err, &exitErr), "enroll with a %s token must fail: %v\n%s", tc.name, err, out)
		require.Equal(t, 1, exitErr.ExitCode(), "exit code of enroll with a %s token:\n%s", tc.name, out)
		require.Contains(t, out, "skypanel-agent enroll: enroll: "+tc.want, "%s token:\n%s", tc.name, out)
		require.NoFileExists(t, filepath.Join(dir, "node.key"), "a refused enrollment leaves no key behind")
		require.NoFileExists(t, filepath.Join(dir, "state.json"))
	}
	ns := c.list()
	require.Len(t, ns, 3, "refused enrollments add no node")

	// Remove node 3 through the API: drained, out of the swarm, certificate revoked; its
	// agent is refused from then on.
	_, err = api.RemoveNode(ctx, connect.NewRequest(&clusterv1.RemoveNodeRequest{NodeId: c.ids[3]}))
	require.NoError(t, err)
	eventually(t, 60*time.Second, "node 3 removed", func() bool {
		resp, err := api.GetNode(ctx, connect.NewRequest(&clusterv1.GetNodeRequest{NodeId: c.ids[3]}))
		return err == nil && resp.Msg.GetNode().GetState() == clusterv1.NodeState_NODE_STATE_REMOVED
	})
	var valid int
	require.NoError(t, env.Store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM node_certificates WHERE node_id = $1 AND revoked_at IS NULL`, c.ids[3]).Scan(&valid))
	require.Zero(t, valid, "node 3's certificates are revoked")
	eventually(t, 30*time.Second, "node 3's agent logging that the control plane refuses it", func() bool {
		return c.logCount(3, "the control plane refuses this node") > 0
	})
	eventually(t, 30*time.Second, "node 3's next report refused with the reason", func() bool {
		return strings.Contains(c.agentLog(3), "this node was removed from its cluster; enroll it again with a new token")
	})
	eventually(t, 30*time.Second, "docker node ls on the manager without node 3", func() bool {
		out, err := nodes.Docker(ctx, 1, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		return err == nil && trimmedLines(out) == "skpn1 Ready\nskpn2 Ready"
	})
	out, err := nodes.Docker(ctx, 3, "info", "--format", "{{.Swarm.LocalNodeState}}")
	require.NoError(t, err)
	require.Equal(t, "inactive", strings.TrimSpace(out), "node 3 left the swarm")
	require.Len(t, c.list(), 2)
	phase("refusals")

	// Across the whole run: no agent ran a command twice.
	for i := 1; i <= 3; i++ {
		for seq, n := range c.runs(i) {
			require.Equal(t, 1, n, "node %d ran command %d %d times", i, seq, n)
		}
	}
	t.Logf("whole test: %s", time.Since(started).Round(100*time.Millisecond))
}

// clusterRun is the state of one run of the test, with its helpers.
type clusterRun struct {
	t         testing.TB
	nodes     *e2e.Nodes
	env       *testenv.Env
	api       clusterv1connect.ClusterServiceClient
	admin     *testenv.User
	clusterID string
	ids       [4]string // node ids by node number
	usedToken string
}

// trimmedLines sorts a command's output lines, each trimmed of spaces.
func trimmedLines(out string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func host(i int) string { return "skpn" + strconv.Itoa(i) }

// dataDir is the agent's data directory on node i (setup-worker's --data-dir).
func (c *clusterRun) dataDir(i int) string { return filepath.Join(c.nodes.Dir(i), "a") }

// prefix is where setup-worker installs the binaries on node i.
func (c *clusterRun) prefix(i int) string { return filepath.Join(c.nodes.Dir(i), "bin") }

// list returns the cluster's nodes by hostname.
func (c *clusterRun) list() map[string]*clusterv1.Node {
	c.t.Helper()
	resp, err := c.api.ListNodes(c.t.Context(), connect.NewRequest(&clusterv1.ListNodesRequest{ClusterId: c.clusterID}))
	require.NoError(c.t, err)
	out := map[string]*clusterv1.Node{}
	for _, n := range resp.Msg.GetNodes() {
		out[n.GetHostname()] = n
	}
	return out
}

func describe(ns map[string]*clusterv1.Node) string {
	var parts []string
	for _, h := range slices.Sorted(maps.Keys(ns)) {
		n := ns[h]
		parts = append(parts, fmt.Sprintf("%s=%s(unreachable_from=%d)", h,
			strings.TrimPrefix(n.GetState().String(), "NODE_STATE_"), len(n.GetUnreachableFrom())))
	}
	return strings.Join(parts, " ")
}

// waitNodes polls the node list until cond holds.
func (c *clusterRun) waitNodes(timeout time.Duration, what string, cond func(map[string]*clusterv1.Node) bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := ""
	for {
		resp, err := c.api.ListNodes(c.t.Context(), connect.NewRequest(&clusterv1.ListNodesRequest{ClusterId: c.clusterID}))
		if err == nil {
			ns := map[string]*clusterv1.Node{}
			for _, n := range resp.Msg.GetNodes() {
				ns[n.GetHostname()] = n
			}
			if cond(ns) {
				return time.Since(start)
			}
			last = describe(ns)
		} else {
			last = err.Error()
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		select {
		case <-c.t.Context().Done():
			c.t.Fatalf("test ended while waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitNode waits for node i to be in state with exactly the given peers unable to reach it,
// and returns how long that took.
func (c *clusterRun) waitNode(i int, timeout time.Duration, what string, state clusterv1.NodeState, unreachableFrom []string) time.Duration {
	c.t.Helper()
	return c.waitNodes(timeout, what, func(ns map[string]*clusterv1.Node) bool {
		n := ns[host(i)]
		if n == nil || n.GetState() != state {
			return false
		}
		got := slices.Clone(n.GetUnreachableFrom())
		slices.Sort(got)
		return slices.Equal(got, unreachableFrom)
	})
}

// idsExcept returns the sorted ids of every node but i.
func (c *clusterRun) idsExcept(i int) []string {
	var out []string
	for j := 1; j <= 3; j++ {
		if j != i {
			out = append(out, c.ids[j])
		}
	}
	slices.Sort(out)
	return out
}

// reportedPeers reads a peer list (reachable_peers or unreachable_peers) of node i's
// reports, as the control plane stored it.
func (c *clusterRun) reportedPeers(i int, field string) []string {
	c.t.Helper()
	if field != "reachable_peers" && field != "unreachable_peers" {
		c.t.Fatalf("no peer list %q in a report", field)
	}
	var peers []string
	err := c.env.Store.Pool().QueryRow(c.t.Context(), `SELECT `+field+`::text[] FROM nodes WHERE id = $1`, c.ids[i]).Scan(&peers)
	require.NoError(c.t, err)
	slices.Sort(peers)
	return peers
}

// swarmNode formats a swarm node as the manager's Engine sees it ("" when it cannot).
func (c *clusterRun) swarmNode(hostname, format string) string {
	out, err := c.nodes.Docker(c.t.Context(), 1, "node", "inspect", hostname, "--format", format)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// cutFromControlPlane drops packets between node i and the control plane inside the node's
// namespace, in the directions given ("out": from the node, "in": to it); the node still
// reaches its peers.
func (c *clusterRun) cutFromControlPlane(i int, dirs ...string) {
	c.t.Helper()
	if len(dirs) == 0 {
		dirs = []string{"out", "in"}
	}
	c.iptables(i, "-I", dirs)
}

// healToControlPlane removes what cutFromControlPlane added.
func (c *clusterRun) healToControlPlane(i int, dirs ...string) {
	c.t.Helper()
	if len(dirs) == 0 {
		dirs = []string{"out", "in"}
	}
	c.iptables(i, "-D", dirs)
}

func (c *clusterRun) iptables(i int, op string, dirs []string) {
	c.t.Helper()
	rules := map[string][]string{"out": {"OUTPUT", "-d", e2e.HostAddr}, "in": {"INPUT", "-s", e2e.HostAddr}}
	for _, d := range dirs {
		rule := rules[d]
		args := append([]string{"iptables", op, rule[0]}, append(rule[1:], "-j", "DROP")...)
		out, err := c.nodes.Exec(c.t.Context(), i, args...)
		require.NoError(c.t, err, "%s on node %d: %s", strings.Join(args, " "), i, out)
	}
}

// agentPid is the pid of the agent the installer started on node i (its pidfile).
func (c *clusterRun) agentPid(i int) int {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dataDir(i), "agent.pid"))
	require.NoError(c.t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(c.t, err)
	require.True(c.t, alive(pid), "the agent of node %d (pid %d) runs", i, pid)
	return pid
}

// alive reports whether pid runs: PID 1 here reaps no orphans, so a killed agent stays a
// zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(state)
			return !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
		}
	}
	return false
}

// agentLog is everything node i's agents logged: the one the installer started (its log in
// the data dir) and one the test restarted (Spawn's log).
func (c *clusterRun) agentLog(i int) string {
	var b strings.Builder
	for _, p := range []string{filepath.Join(c.dataDir(i), "agent.log"), filepath.Join(c.nodes.Dir(i), "agent.log")} {
		data, _ := os.ReadFile(p)
		b.Write(data)
	}
	return b.String()
}

// logLines returns node i's agent log records.
func (c *clusterRun) logLines(i int) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(c.agentLog(i)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// logCount counts node i's agent log records whose message starts with msg.
func (c *clusterRun) logCount(i int, msg string) int {
	n := 0
	for _, rec := range c.logLines(i) {
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			n++
		}
	}
	return n
}

// runs counts, by sequence, the commands node i's agents started running.
func (c *clusterRun) runs(i int) map[int64]int {
	out := map[int64]int{}
	for _, rec := range c.logLines(i) {
		if rec["msg"] == "running command" {
			if seq, ok := rec["seq"].(float64); ok {
				out[int64(seq)]++
			}
		}
	}
	return out
}

// lastAcked is the highest sequence node i's agent recorded as acknowledged (state.json).
func (c *clusterRun) lastAcked(i int) int64 {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dataDir(i), "state.json"))
	require.NoError(c.t, err)
	var st struct {
		LastAckedSeq int64 `json:"last_acked_seq"`
	}
	require.NoError(c.t, json.Unmarshal(b, &st))
	return st.LastAckedSeq
}

// command is one row of the node command outbox.
type command struct {
	node  string
	seq   int64
	kind  string
	acked bool
	ok    *bool
	err   string
}

func (q command) key() string { return fmt.Sprintf("%s/%d", q.node, q.seq) }

// commands reads the cluster's command outbox, by node/seq.
func (c *clusterRun) commands() map[string]command {
	c.t.Helper()
	rows, err := c.env.Store.Pool().Query(c.t.Context(), `
		SELECT nc.node_id::text, nc.seq, nc.kind, nc.acked_at IS NOT NULL, nc.ok, nc.error
		FROM node_commands nc JOIN nodes n ON n.id = nc.node_id
		WHERE n.cluster_id = $1 ORDER BY nc.node_id, nc.seq`, c.clusterID)
	require.NoError(c.t, err)
	defer rows.Close()
	out := map[string]command{}
	for rows.Next() {
		var q command
		require.NoError(c.t, rows.Scan(&q.node, &q.seq, &q.kind, &q.acked, &q.ok, &q.err))
		out[q.key()] = q
	}
	require.NoError(c.t, rows.Err())
	return out
}

// open returns the commands not acknowledged yet, in order.
func (c *clusterRun) open(cmds map[string]command) []command {
	var out []command
	for _, q := range cmds {
		if !q.acked {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b command) int { return int(a.seq - b.seq) })
	return out
}

func keys(cmds map[string]command) []string { return slices.Sorted(maps.Keys(cmds)) }

func maxSeq(cmds map[string]command, nodeID string) int64 {
	var m int64
	for _, q := range cmds {
		if q.node == nodeID {
			m = max(m, q.seq)
		}
	}
	return m
}

// dumpOnFailure logs what a failed run needs for diagnosis: the nodes as the API sees them,
// the end of every agent's log and the node table.
func (c *clusterRun) dumpOnFailure() {
	if !c.t.Failed() {
		return
	}
	if resp, err := c.api.ListNodes(context.Background(), connect.NewRequest(&clusterv1.ListNodesRequest{ClusterId: c.clusterID})); err == nil {
		for _, n := range resp.Msg.GetNodes() {
			c.t.Logf("node %s %s: %s availability=%s swarm=%s unreachable_from=%v labels=%v", n.GetHostname(), n.GetId(),
				n.GetState(), n.GetAvailability(), n.GetSwarmNodeId(), n.GetUnreachableFrom(), n.GetLabels())
		}
	}
	for i := 1; i <= 3; i++ {
		lines := strings.Split(strings.TrimRight(c.agentLog(i), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		c.t.Logf("agent log of node %d (last %d lines):\n%s", i, len(lines), strings.Join(lines, "\n"))
	}
	c.t.Logf("nodes:\n%s", c.nodes.Status())
	if !testing.Verbose() && os.Getenv("SKYPANEL_TEST_LOGS") == "" {
		c.t.Log("the control plane's log is off: run with -v or SKYPANEL_TEST_LOGS=1 to see it")
	}
}

// phases returns a function that logs how long the phase since its last call took.
func phases(t testing.TB) func(string) {
	last := time.Now()
	return func(name string) {
		t.Logf("phase %q took %s", name, time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}
}

// buildStatic builds a static binary of pkg into dir/name, as `make build` does for the
// downloads setup-worker fetches.
func buildStatic(t testing.TB, dir, name, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build %s: %s", pkg, out)
}
