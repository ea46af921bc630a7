package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
	"skypanel/shared/procstat"
)

// runSim steps the simulated agent count up until a step misses the goal or the last passes.
func runSim(ctx context.Context, cfg Config, b bins, work string, stdout, stderr io.Writer) error {
	// The simulator is the load, not what is measured: its memory is not counted, and each of
	// its garbage collections (half a gigabyte of heap at 10,000 agents) would stall every
	// agent it simulates and add that to the latencies it records. Collect four times less
	// often than the default, and once before each step's warm-up (below), so that its next
	// collection falls after the measured window rather than in it.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	cp, err := startControlPlane(ctx, cfg, b, work, "controlplane-sim")
	if err != nil {
		return err
	}
	defer cp.stop()
	clusterID, err := cp.createCluster(ctx, "bench-sim")
	if err != nil {
		return err
	}
	u, err := url.Parse(cp.agentURL)
	if err != nil {
		return err
	}

	simCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var agents []*simAgent
	defer func() {
		cancel()
		wg.Wait()
		for _, a := range agents {
			a.tr.CloseIdleConnections()
		}
	}()

	rec := &recorder{}
	epoch := time.Now()
	var tokens []string
	pool := "default Postgres pool"
	if cfg.DBMaxConns > 0 {
		pool = fmt.Sprintf("Postgres pool of %d", cfg.DBMaxConns)
	}
	if cfg.MemoryLimit != "" {
		pool += ", GOMEMLIMIT=" + cfg.MemoryLimit
	}
	if cfg.Peers > 0 {
		pool += fmt.Sprintf(", each report naming %d peers", cfg.Peers)
	}
	fmt.Fprintf(stdout, "\n## Simulated agents: one control plane (own process, %s), report every %s, goal p99 < %s and RSS < %s\n\n",
		pool, cfg.Interval, cfg.P99Goal, mib(cfg.RSSGoal))
	fmt.Fprintln(stdout, "| agents | reports | errors | p50 | p90 | p99 | max | p99 in the CP | CP RSS (max) | CP CPU (one core) | Postgres CPU | bench CPU | enroll | all connected | meets goal |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
	best := 0
	for _, target := range cfg.Steps {
		// Tokens for the new agents: the API caps a token at maxTokenUses nodes.
		for len(tokens)*maxTokenUses < target {
			tok, err := cp.createToken(ctx, clusterID, maxTokenUses)
			if err != nil {
				return err
			}
			tokens = append(tokens, tok)
		}
		enrollStart := time.Now()
		added, err := enrollAgents(ctx, u, tokens, len(agents), target, cfg.EnrollConcurrency)
		agents = append(agents, added...)
		if err != nil {
			return fmt.Errorf("enroll agents %d..%d: %w", len(agents), target, err)
		}
		enrollTime := time.Since(enrollStart)
		namePeers(added, cfg.Peers)
		for _, a := range added {
			a.phase = time.Duration(frac(float64(a.n)*0.6180339887498949) * float64(cfg.Interval))
			wg.Add(2)
			go func() { defer wg.Done(); a.session(simCtx, rec) }()
			go func() { defer wg.Done(); a.reports(simCtx, epoch, cfg.Interval, rec) }()
		}
		// The step's new agents all dial at once, as after a control-plane restart; the
		// measured window starts once every agent's stream is up, plus the warm-up, so that
		// it shows steady reporting rather than the end of the connection storm.
		connectStart := time.Now()
		connected := waitConnected(ctx, rec, len(agents), maxConnectWait)
		connectTime := time.Since(connectStart)
		fmt.Fprintf(stderr, "step %d: %d agents enrolled in %s, %d of %d streams up in %s; warming up %s, measuring %s\n",
			target, len(added), enrollTime.Round(time.Millisecond), connected, len(agents),
			connectTime.Round(time.Millisecond), cfg.Warmup, cfg.Measure)
		runtime.GC()
		if err := sleep(ctx, cfg.Warmup); err != nil {
			return err
		}

		cpStart, err := procstat.Process(cp.pid())
		if err != nil {
			return err
		}
		selfStart, _ := procstat.Process(os.Getpid())
		pgStart := procstat.TreeCPU(cp.postmaster)
		histStart := reportHistogram(cp.url)
		drops := rec.drops.Load()
		rec.start(cfg.P99Goal)
		maxRSS := cpStart.RSS
		// Which second of the window each collection ended in, the simulator's and the
		// control plane's, to set beside the slow Reports of each second.
		var simGCs, cpGCs []int
		simN, cpN := gcCycles(), cpGCCount(cp.url)
		for end := time.Now().Add(cfg.Measure); time.Now().Before(end); {
			if err := sleep(ctx, min(time.Second, time.Until(end))); err != nil {
				return err
			}
			sec := int(time.Since(rec.began) / time.Second)
			if n := gcCycles(); n > simN {
				simGCs, simN = append(simGCs, sec), n
			}
			if n := cpGCCount(cp.url); n > cpN {
				if cpN >= 0 {
					cpGCs = append(cpGCs, sec)
				}
				cpN = n
			}
			s, err := procstat.Process(cp.pid())
			if err != nil {
				return fmt.Errorf("control plane gone (see %s): %w", cp.logPath, err)
			}
			maxRSS = max(maxRSS, s.RSS)
		}
		lat, errs := rec.stop()
		serverP99 := histogramP99(histStart, reportHistogram(cp.url))
		cpEnd, err := procstat.Process(cp.pid())
		if err != nil {
			return err
		}
		selfEnd, _ := procstat.Process(os.Getpid())
		pgCPU := "-"
		if cp.postmaster > 0 {
			pgCPU = fmt.Sprintf("%.0f %%", 100*float64(procstat.TreeCPU(cp.postmaster)-pgStart)/float64(selfEnd.At.Sub(selfStart.At)))
		}
		maxRSS = max(maxRSS, cpEnd.RSS)
		drops = rec.drops.Load() - drops
		fmt.Fprintf(stderr, "step %d: Reports over %s in each second of the window from %s: %v\n", target, cfg.P99Goal,
			rec.began.UTC().Format("15:04:05.000"), rec.slowBySecond())
		fmt.Fprintf(stderr, "step %d: command stream messages received in each second: %v\n", target, rec.streamedBySecond())
		fmt.Fprintf(stderr, "step %d: collections ended in seconds: control plane %v, simulator %v\n", target, cpGCs, simGCs)

		slices.Sort(lat)
		p50, p90, p99, pmax := pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100)
		expected := int(float64(target) * cfg.Measure.Seconds() / cfg.Interval.Seconds())
		ok := len(lat) > 0 && errs == 0 && p99 < cfg.P99Goal && maxRSS < cfg.RSSGoal && len(lat) >= expected*9/10
		verdict := "yes"
		if !ok {
			verdict = "no"
		}
		allConnected := connectTime.Round(100 * time.Millisecond).String()
		if connected < len(agents) {
			allConnected = fmt.Sprintf("%d of %d in %s", connected, len(agents), maxConnectWait)
		}
		fmt.Fprintf(stdout, "| %d | %d | %d | %s | %s | %s | %s | %s | %s | %.0f %% | %s | %.0f %% | %s | %s | %s |\n",
			target, len(lat), errs, ms(p50), ms(p90), ms(p99), ms(pmax), serverP99, mib(maxRSS),
			procstat.Share(cpStart, cpEnd), pgCPU, procstat.Share(selfStart, selfEnd), enrollTime.Round(100*time.Millisecond), allConnected, verdict)
		if drops > 0 || len(lat) < expected*9/10 {
			fmt.Fprintf(stdout, "\n(step %d: %d reports of about %d expected, %d command streams dropped)\n\n", target, len(lat), expected, drops)
		}
		if !ok {
			if !cfg.AllSteps {
				break
			}
			continue
		}
		if best == prevStep(cfg.Steps, target) {
			best = target // only a run of passing steps from the first counts
		}
	}
	if best > 0 {
		fmt.Fprintf(stdout, "\nLargest agent count meeting the goal: %d\n", best)
	} else {
		fmt.Fprintf(stdout, "\nNo step met the goal.\n")
	}
	return nil
}

// maxConnectWait bounds how long a step waits for every agent's stream to be up.
const maxConnectWait = 5 * time.Minute

// waitConnected waits until want agents have had their stream up (each counts once), or
// until timeout, and returns how many had.
func waitConnected(ctx context.Context, rec *recorder, want int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n := int(rec.connected.Load())
		if n >= want || time.Now().After(deadline) || sleep(ctx, 100*time.Millisecond) != nil {
			return n
		}
	}
}

// prevStep is the step before target, 0 for the first.
func prevStep(steps []int, target int) int {
	i := slices.Index(steps, target)
	if i <= 0 {
		return 0
	}
	return steps[i-1]
}

// reportHistogram reads the control plane's Report duration histogram from its /metrics:
// cumulative counts by upper bound in seconds (nil if it cannot be read).
func reportHistogram(base string) map[float64]float64 {
	lines := scrape(base)
	if lines == nil {
		return nil
	}
	out := map[float64]float64{}
	for _, line := range lines {
		if !strings.HasPrefix(line, "skypanel_rpc_duration_seconds_bucket{") || !strings.Contains(line, `AgentService/Report"`) {
			continue
		}
		m := bucketRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		le, err1 := strconv.ParseFloat(m[1], 64)
		n, err2 := strconv.ParseFloat(m[2], 64)
		if err1 == nil && err2 == nil {
			out[le] = n
		}
	}
	return out
}

// gcCycles is how many garbage collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// cpGCCount is how many garbage collections the control plane has completed (its Go
// collector's go_gc_duration_seconds_count), or -1 when it cannot be read.
func cpGCCount(base string) int64 {
	for _, line := range scrape(base) {
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_count "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// scrape returns the lines of the control plane's /metrics; nil when it cannot be read.
func scrape(base string) []string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	return strings.Split(string(body), "\n")
}

var bucketRE = regexp.MustCompile(`le="([^"]+)".*\}\s+(\S+)$`)

// histogramP99 is the bucket holding the 99th percentile of the Reports timed between two
// readings of the histogram: the time inside the handler chain (the interceptors and the
// handler), without the network, TLS and HTTP/2 on either side or the simulator's scheduling.
func histogramP99(from, to map[float64]float64) string {
	if to == nil {
		return "n/a"
	}
	bounds := slices.Sorted(maps.Keys(to))
	total := to[math.Inf(1)] - from[math.Inf(1)]
	if total <= 0 {
		return "n/a"
	}
	for _, le := range bounds {
		if to[le]-from[le] >= 0.99*total {
			if math.IsInf(le, 1) {
				return fmt.Sprintf("> %g ms", bounds[len(bounds)-2]*1000)
			}
			return fmt.Sprintf("≤ %g ms", le*1000)
		}
	}
	return "n/a"
}

// simAgent is one simulated node: its own key, certificate and HTTP/2 connection.
type simAgent struct {
	n      int
	nodeID string
	tr     *http2.Transport
	api    agentv1connect.AgentServiceClient
	report *agentv1.ReportRequest
	phase  time.Duration // offset of its reports within the interval
	// peers are the peers its reports name (namePeers) while the control plane does not
	// echo their digest, as a real agent does; heldPeers is the digest last echoed.
	peers     []string
	heldPeers uint64
	// streamUp is set when its command stream first delivered a message.
	streamUp atomic.Bool
}

// enrollAgents enrolls agents from..to-1 (agent n uses tokens[n/maxTokenUses]), concurrency
// at a time, each with its own key and CSR through the Enroll RPC over TLS checked against the
// token's CA pin.
func enrollAgents(ctx context.Context, u *url.URL, tokens []string, from, to, concurrency int) ([]*simAgent, error) {
	out := make([]*simAgent, to-from)
	next := atomic.Int64{}
	next.Store(int64(from))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One enrollment connection per worker, as a fresh agent would open one.
			pin := mustParseToken(tokens[0]).CAPin
			tr := newTransport(pinnedTLS(pin, u.Hostname()))
			defer tr.CloseIdleConnections()
			api := agentv1connect.NewAgentServiceClient(&http.Client{Transport: tr}, u.String())
			for {
				n := int(next.Add(1) - 1)
				if n >= to || ctx.Err() != nil {
					return
				}
				a, err := enrollOne(ctx, api, u, tokens[n/maxTokenUses], n)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("agent %d: %w", n, err) })
					return
				}
				out[n-from] = a
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return slices.DeleteFunc(out, func(a *simAgent) bool { return a == nil }), firstErr
	}
	return out, nil
}

func enrollOne(ctx context.Context, api agentv1connect.AgentServiceClient, u *url.URL, token string, n int) (*simAgent, error) {
	host := fmt.Sprintf("sim-%05d", n)
	key, csr, err := pki.NewNodeKey(host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := api.Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{
		Token: token, CsrDer: csr,
		Facts: &agentv1.HostFacts{
			Hostname: host, Os: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-bench", Arch: "amd64",
			Cpus: 4, MemoryBytes: 8 << 30, DockerVersion: "20.10.24", AgentVersion: "bench",
			// Documentation range (RFC 5737): simulated nodes are never dialed.
			AdvertiseAddr: fmt.Sprintf("198.51.%d.%d", 100+n/250%20, 1+n%250),
		},
	}))
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	tlsConf, err := nodeTLS(resp.Msg, key, u.Hostname())
	if err != nil {
		return nil, err
	}
	tr := newTransport(tlsConf)
	return &simAgent{
		n: n, nodeID: resp.Msg.GetNodeId(), tr: tr,
		api:    agentv1connect.NewAgentServiceClient(&http.Client{Transport: tr}, u.String()),
		report: sampleReport(n),
	}, nil
}

// session holds the command stream open, acknowledging any command, and reconnects after a
// short jittered pause when it drops.
func (a *simAgent) session(ctx context.Context, rec *recorder) {
	var after int64
	for ctx.Err() == nil {
		stream, err := a.api.Connect(ctx, connect.NewRequest(&agentv1.ConnectRequest{AfterSeq: after, AgentVersion: "bench"}))
		if err == nil {
			for stream.Receive() {
				rec.received()
				if !a.streamUp.Swap(true) {
					rec.connected.Add(1)
				}
				if c := stream.Msg().GetCommand(); c != nil {
					actx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if _, err := a.api.Ack(actx, connect.NewRequest(&agentv1.AckRequest{Seq: c.GetSeq(), Ok: true, Output: "{}"})); err == nil {
						after = c.GetSeq()
					}
					cancel()
				}
			}
			stream.Close()
		}
		if ctx.Err() != nil {
			return
		}
		rec.drops.Add(1)
		if sleep(ctx, time.Second+time.Duration(a.n%2000)*time.Millisecond) != nil {
			return
		}
	}
}

// reports sends a Report at epoch + phase + k*interval, the same grid for every step, so the
// load stays spread evenly over the interval whatever the count.
func (a *simAgent) reports(ctx context.Context, epoch time.Time, interval time.Duration, rec *recorder) {
	for {
		since := time.Since(epoch) - a.phase
		k := int64(math.Ceil(float64(since) / float64(interval)))
		due := epoch.Add(a.phase + time.Duration(k)*interval)
		if sleep(ctx, time.Until(due)) != nil {
			return
		}
		a.report.SampledAt = timestamppb.Now()
		a.report.ReachablePeers = a.peers
		if a.heldPeers != 0 && a.heldPeers == a.report.PeersDigest {
			a.report.ReachablePeers = nil
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		resp, err := a.api.Report(rctx, connect.NewRequest(a.report))
		d := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.heldPeers = 0
		if err == nil {
			a.heldPeers = resp.Msg.GetPeersDigest()
		}
		rec.add(d, err)
	}
}

// namePeers makes each agent's reports name the others of its group of peers+1 agents
// (consecutive in agents) as reachable, the way gossip in a cluster of that size does.
func namePeers(agents []*simAgent, peers int) {
	if peers <= 0 {
		return
	}
	for from := 0; from < len(agents); from += peers + 1 {
		group := agents[from:min(len(agents), from+peers+1)]
		for _, a := range group {
			for _, p := range group {
				if p != a {
					a.peers = append(a.peers, p.nodeID)
				}
			}
			slices.Sort(a.peers)
			// The control plane takes the digest as opaque; these lists never change.
			a.report.PeersDigest = uint64(a.n) + 1
		}
	}
}

// sampleReport is a plausible report of a small node.
func sampleReport(n int) *agentv1.ReportRequest {
	return &agentv1.ReportRequest{
		Host: &agentv1.HostMetrics{
			CpuPercent: float64(5 + n%40), MemoryUsedBytes: int64(2+n%4) << 30, MemoryTotalBytes: 8 << 30,
			DiskUsedBytes: 20 << 30, DiskTotalBytes: 80 << 30, NetRxBytes: int64(n) << 20, NetTxBytes: int64(n) << 19,
			Load1: 0.5, Load5: 0.4, Load15: 0.3,
		},
		Docker: &agentv1.DockerState{
			EngineVersion: "20.10.24", SwarmState: "inactive", Availability: "active",
			ContainersRunning: int32(n % 12), ContainersTotal: int32(n%12 + 2), ImagesBytes: 3 << 30,
		},
	}
}

// recorder collects Report latencies while measuring.
type recorder struct {
	mu    sync.Mutex
	on    bool
	lat   []time.Duration
	errs  int
	drops atomic.Int64 // command streams that ended
	// connected counts agents whose command stream delivered its first message.
	connected atomic.Int64
	// slow counts, by second of the window, the Reports that took longer than slowOver:
	// whether the tail is spread out or comes in bursts.
	began    time.Time
	slowOver time.Duration
	slow     []int
	// streamed counts, by second of the window, the command stream messages (keepalives,
	// here) the agents received: whether they come evenly or in bursts.
	streamed []int
}

func (r *recorder) start(slowOver time.Duration) {
	r.mu.Lock()
	r.on, r.lat, r.errs = true, make([]time.Duration, 0, 1<<16), 0
	r.began, r.slowOver, r.slow, r.streamed = time.Now(), slowOver, nil, nil
	r.mu.Unlock()
}

// slowBySecond is the count of slow Reports in each second of the last window.
func (r *recorder) slowBySecond() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.slow)
}

func (r *recorder) stop() ([]time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.lat, r.errs
}

// streamedBySecond is the count of command stream messages in each second of the last window.
func (r *recorder) streamedBySecond() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.streamed)
}

// countIn adds one to the count of the current second of the window in counts.
func (r *recorder) countIn(counts *[]int) {
	sec := int(time.Since(r.began) / time.Second)
	for len(*counts) <= sec {
		*counts = append(*counts, 0)
	}
	(*counts)[sec]++
}

// received counts a command stream message.
func (r *recorder) received() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.countIn(&r.streamed)
	}
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	if err != nil {
		r.errs++
		return
	}
	r.lat = append(r.lat, d)
	if d > r.slowOver {
		r.countIn(&r.slow)
	}
}

// newTransport is an HTTP/2-only transport over TLS: one connection per agent, as the agent
// has, with HTTP/2 pings to notice a dead connection.
func newTransport(tlsConf *tls.Config) *http2.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http2.Transport{
		TLSClientConfig: tlsConf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: dialer, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
		ReadIdleTimeout:           30 * time.Second,
		PingTimeout:               15 * time.Second,
		MaxEncoderHeaderTableSize: 1, // as the agent's (agent/internal/link)
	}
}

// pinnedTLS trusts the server only if its chain holds a CA with the token's pin that signed
// its certificate, as the agent's enrollment does.
func pinnedTLS(pin, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if pki.Pin(c) == pin {
					roots := x509.NewCertPool()
					roots.AddCert(c)
					_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName})
					return err
				}
			}
			return errors.New("control plane CA does not match the token's pin")
		},
	}
}

// nodeTLS is an enrolled node's mutual-TLS configuration.
func nodeTLS(resp *agentv1.EnrollResponse, key *ecdsa.PrivateKey, serverName string) (*tls.Config, error) {
	ca, err := pki.ParseCertificatePEM([]byte(resp.GetCaPem()))
	if err != nil {
		return nil, fmt.Errorf("node tls: ca: %w", err)
	}
	leaf, err := pki.ParseCertificatePEM([]byte(resp.GetCertificatePem()))
	if err != nil {
		return nil, fmt.Errorf("node tls: certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: serverName,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}},
	}, nil
}

func mustParseToken(s string) pki.EnrollmentToken {
	t, err := pki.ParseEnrollmentToken(s)
	if err != nil {
		panic(fmt.Sprintf("token from the API: %v", err))
	}
	return t
}

// pct is the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func frac(x float64) float64 { return x - math.Floor(x) }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
