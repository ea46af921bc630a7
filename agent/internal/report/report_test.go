package report

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/host"
	"skypanel/agent/internal/link"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

type fakeEngine struct {
	info    docker.Info
	err     error
	duCalls int
}

func (f *fakeEngine) Info(context.Context) (docker.Info, error) { return f.info, f.err }
func (f *fakeEngine) DiskUsage(context.Context) (docker.DiskUsage, error) {
	f.duCalls++
	return docker.DiskUsage{ImagesBytes: 100, VolumesBytes: 7}, nil
}

type fakePeers struct{}

func (fakePeers) Peers() ([]string, []string) { return []string{"node-b"}, []string{"node-c"} }

func TestAReportCarriesHostDockerAndGossip(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{ReportInterval: 3})
	id := cp.NewIdentity(t, "node-1", time.Hour)
	client := link.New(cp.URL, id.TLSConfig())
	defer client.Close()
	eng := &fakeEngine{info: docker.Info{EngineVersion: "20.10.24", SwarmNodeID: "sw1", SwarmState: "active", Manager: true,
		Availability: "active", ContainersRunning: 2, ContainersTotal: 3, TasksRunning: 1}}
	r, err := New(Options{Client: client, Sampler: &host.Sampler{}, Engine: eng, Peers: fakePeers{}, OverlayEncryption: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	reports := cp.Reports()
	if len(reports) != 2 {
		t.Fatalf("reports = %d", len(reports))
	}
	got := reports[1]
	d := got.GetDocker()
	if d.GetEngineVersion() != "20.10.24" || d.GetRole() != agentv1.NodeRole_NODE_ROLE_MANAGER || d.GetSwarmNodeId() != "sw1" ||
		d.GetContainersRunning() != 2 || d.GetTasksRunning() != 1 || d.GetImagesBytes() != 100 || !d.GetOverlayEncryption() {
		t.Fatalf("docker state = %v", d)
	}
	if got.GetHost().GetMemoryTotalBytes() <= 0 || got.GetHost().GetDiskTotalBytes() <= 0 || got.GetSampledAt() == nil {
		t.Fatalf("host = %v", got.GetHost())
	}
	if !slices.Equal(got.GetReachablePeers(), []string{"node-b"}) || !slices.Equal(got.GetUnreachablePeers(), []string{"node-c"}) {
		t.Fatalf("peers = %v / %v", got.GetReachablePeers(), got.GetUnreachablePeers())
	}
	if eng.duCalls != 1 {
		t.Fatalf("disk usage asked %d times in two reports, want once (cached)", eng.duCalls)
	}
	if r.Interval() != 3*time.Second {
		t.Fatalf("interval = %s, want the control plane's 3s", r.Interval())
	}
}

// changingPeers is gossip whose view the test changes.
type changingPeers struct {
	mu                     sync.Mutex
	reachable, unreachable []string
}

func (c *changingPeers) Peers() ([]string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reachable), slices.Clone(c.unreachable)
}

func (c *changingPeers) set(reachable, unreachable []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reachable, c.unreachable = reachable, unreachable
}

// switchingClient is a ClientSource the test points elsewhere.
type switchingClient struct {
	mu  sync.Mutex
	cur ClientSource
}

func (s *switchingClient) use(c ClientSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = c
}

func (s *switchingClient) API() agentv1connect.AgentServiceClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.API()
}

// An answer that counts as the command stream's keepalive is passed on to the session; others
// are not.
func TestReportAnswersThatAreStreamKeepalivesArePassedOn(t *testing.T) {
	for _, stream := range []bool{false, true} {
		cp := controlplanetest.New(t, controlplanetest.Options{ReportKeepalives: true})
		id := cp.NewIdentity(t, "node-1", time.Hour)
		client := link.New(cp.URL, id.TLSConfig())
		defer client.Close()
		if stream {
			// A queued command makes the stream answer at once.
			cp.Queue(&agentv1.Command{Seq: 1, Id: "c1", Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{}}})
			s, err := client.API().Connect(context.Background(), connect.NewRequest(&agentv1.ConnectRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cp.Wait("the stream to open", 10*time.Second, func() bool { return cp.OpenStreams() == 1 })
		}
		var keepalives atomic.Int32
		r, err := New(Options{Client: client, Sampler: &host.Sampler{}, Engine: &fakeEngine{},
			StreamKeepalive: func() { keepalives.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := r.ReportOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		want := int32(0)
		if stream {
			want = 3
		}
		if got := keepalives.Load(); got != want {
			t.Errorf("stream open %v: %d stream keepalives passed on, want %d", stream, got, want)
		}
	}
}

func TestPeerListsAreSentOnlyWhenTheControlPlaneDoesNotHoldThem(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{HoldPeers: true})
	id := cp.NewIdentity(t, "node-1", time.Hour)
	client := link.New(cp.URL, id.TLSConfig())
	defer client.Close()
	gossip := &changingPeers{}
	gossip.set([]string{"node-b", "node-c"}, []string{"node-d"})
	api := &switchingClient{}
	api.use(client)
	r, err := New(Options{Client: api, Sampler: &host.Sampler{}, Engine: &fakeEngine{}, Peers: gossip})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	report := func() *agentv1.ReportRequest {
		t.Helper()
		if err := r.ReportOnce(ctx); err != nil {
			t.Fatal(err)
		}
		all := cp.Reports()
		return all[len(all)-1]
	}
	named := func(rep *agentv1.ReportRequest) bool {
		return len(rep.GetReachablePeers()) > 0 || len(rep.GetUnreachablePeers()) > 0
	}

	first := report()
	if !named(first) || first.GetPeersDigest() == 0 {
		t.Fatalf("first report: peers %v / %v, digest %x; want the lists and their digest",
			first.GetReachablePeers(), first.GetUnreachablePeers(), first.GetPeersDigest())
	}
	second := report()
	if named(second) || second.GetPeersDigest() != first.GetPeersDigest() {
		t.Fatalf("second report, lists unchanged and held: peers %v / %v, digest %x; want no lists, digest %x",
			second.GetReachablePeers(), second.GetUnreachablePeers(), second.GetPeersDigest(), first.GetPeersDigest())
	}

	gossip.set([]string{"node-b"}, []string{"node-c", "node-d"})
	changed := report()
	if !slices.Equal(changed.GetReachablePeers(), []string{"node-b"}) || !slices.Equal(changed.GetUnreachablePeers(), []string{"node-c", "node-d"}) ||
		changed.GetPeersDigest() == first.GetPeersDigest() {
		t.Fatalf("report after a change: peers %v / %v, digest %x", changed.GetReachablePeers(), changed.GetUnreachablePeers(), changed.GetPeersDigest())
	}
	if named(report()) {
		t.Fatal("the changed lists were sent again although held")
	}

	// A control plane that lost them (restarted) does not echo the digest: the next report
	// names them again.
	cp.ForgetPeers()
	if named(report()) {
		t.Fatal("the agent cannot know yet that the lists were lost")
	}
	if again := report(); !slices.Equal(again.GetUnreachablePeers(), []string{"node-c", "node-d"}) {
		t.Fatalf("report after the control plane lost the lists: peers %v / %v", again.GetReachablePeers(), again.GetUnreachablePeers())
	}

	// A report that failed may or may not have reached the control plane: the next one names
	// the lists, though this control plane still holds them.
	if named(report()) {
		t.Fatal("held lists sent again")
	}
	nowhere := link.New("https://127.0.0.1:1", nil)
	defer nowhere.Close()
	api.use(nowhere)
	if err := r.ReportOnce(ctx); err == nil {
		t.Fatal("a report to nowhere succeeded")
	}
	api.use(client)
	if !named(report()) {
		t.Fatal("the report after a failed one left the lists out")
	}

	// Gossip seeing no peer at all is said with a zero digest.
	gossip.set(nil, nil)
	if none := report(); named(none) || none.GetPeersDigest() != 0 {
		t.Fatalf("no peers: %v / %v, digest %x", none.GetReachablePeers(), none.GetUnreachablePeers(), none.GetPeersDigest())
	}
}

func TestPeersDigest(t *testing.T) {
	if peersDigest(nil, nil) != 0 {
		t.Fatal("empty lists must have digest 0")
	}
	seen := map[uint64]string{}
	for name, lists := range map[string][2][]string{
		"a reachable":         {{"a"}, nil},
		"a unreachable":       {nil, {"a"}},
		"a and b reachable":   {{"a", "b"}, nil},
		"ab reachable":        {{"ab"}, nil},
		"a, b unreachable":    {{"a"}, {"b"}},
		"b, a unreachable":    {{"b"}, {"a"}},
		"a and b unreachable": {nil, {"a", "b"}},
	} {
		d := peersDigest(lists[0], lists[1])
		if d == 0 {
			t.Fatalf("%s: digest 0", name)
		}
		if other, ok := seen[d]; ok {
			t.Fatalf("%s and %s have the same digest", name, other)
		}
		seen[d] = name
	}
}

func TestAStoppedEngineStillLeavesHostMetrics(t *testing.T) {
	r, err := New(Options{Client: link.New("https://127.0.0.1:1", nil), Sampler: &host.Sampler{},
		Engine: &fakeEngine{err: errors.New("cannot connect to the Docker daemon")}})
	if err != nil {
		t.Fatal(err)
	}
	req := r.Build(context.Background())
	if req.GetDocker() != nil || req.GetHost() == nil {
		t.Fatalf("report = %v", req)
	}
}

func TestARefusedNodeReportsSlowly(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	id := cp.NewIdentity(t, "node-1", time.Hour)
	client := link.New(cp.URL, id.TLSConfig())
	defer client.Close()
	logs := &syncBuffer{}
	r, err := New(Options{Client: client, Sampler: &host.Sampler{}, Engine: &fakeEngine{}, Interval: 20 * time.Millisecond,
		RefusedInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	cp.Wait("a first report", 10*time.Second, func() bool { return len(cp.Reports()) == 1 })
	cp.Revoke("node-1")
	// The next report is refused; after it, none comes for the refused interval.
	refused := func() int { return strings.Count(logs.String(), "refuses this node's reports") }
	cp.Wait("a refused report", 10*time.Second, func() bool { return refused() >= 1 })
	// Only waiting shows that no retry comes: 15 report intervals.
	time.Sleep(300 * time.Millisecond)
	if n := refused(); n != 1 {
		t.Fatalf("refused reports = %d within 15 report intervals, want 1 (retrying slowly)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination the test reads while the reporter writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{connect.NewError(connect.CodeUnauthenticated, errors.New("this node certificate was revoked")), true},
		{connect.NewError(connect.CodePermissionDenied, errors.New("this node was removed")), true},
		{connect.NewError(connect.CodeUnavailable, errors.New("control plane shutting down")), false},
		{errors.New("dial tcp: connection refused"), false},
	} {
		if got := Refused(tc.err); got != tc.want {
			t.Errorf("Refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRole(t *testing.T) {
	for _, tc := range []struct {
		info docker.Info
		want agentv1.NodeRole
	}{
		{docker.Info{SwarmState: "inactive"}, agentv1.NodeRole_NODE_ROLE_UNSPECIFIED},
		{docker.Info{SwarmState: "active", Manager: true}, agentv1.NodeRole_NODE_ROLE_MANAGER},
		{docker.Info{SwarmState: "active"}, agentv1.NodeRole_NODE_ROLE_WORKER},
		{docker.Info{SwarmState: "pending"}, agentv1.NodeRole_NODE_ROLE_UNSPECIFIED},
	} {
		if got := Role(tc.info); got != tc.want {
			t.Errorf("Role(%+v) = %v, want %v", tc.info, got, tc.want)
		}
	}
}
