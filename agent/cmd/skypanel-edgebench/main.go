// Command skypanel-edgebench measures the edge proxy's throughput against a direct
// connection and against nginx (issue 5, benchmark b). In one run on this host it starts
// a small Go HTTP backend, the edge (the agent binary's `edge` subcommand, a separate
// process like nginx) and Debian's nginx-light as a reverse proxy with keep-alive
// upstreams, then runs wrk against the three in turn for several rounds and prints a
// Markdown table: requests per second, p50 and p99 latency, and the ratio to direct.
//
// It prints figures; it is not a pass/fail test. wrk, the proxy and the backend share the
// machine's cores, so compare ratios from one run, not absolute figures across machines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skypanel/agent/internal/edge"
	"skypanel/shared/procstat"
)

const benchHost = "bench.skypanel.test"

type options struct {
	agentBin    string
	threads     int
	connections int
	duration    time.Duration
	rounds      int
	bodyBytes   int
	edgeProcs   int
}

func main() {
	var o options
	flag.StringVar(&o.agentBin, "agent", "", "the skypanel-agent binary whose `edge` subcommand is measured (default: build it with CGO_ENABLED=0 into a temporary directory)")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads (-t), the same for every target")
	flag.IntVar(&o.connections, "connections", 64, "wrk connections (-c), the same for every target")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one wrk run (-d)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each round measures every target once, in a rotating order")
	flag.IntVar(&o.bodyBytes, "body-bytes", 128, "size of the backend's fixed response body")
	flag.IntVar(&o.edgeProcs, "edge-gomaxprocs", 0, "also measure a second edge process run with GOMAXPROCS set to this (0: don't)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "skypanel-edgebench: %v\n", err)
		os.Exit(1)
	}
}

// target is one thing wrk measures.
type target struct {
	name string
	url  string
	pid  int // the proxy's process (nginx: its master; the workers are counted with it); 0 for direct
	runs []result
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   string
	// CPU per request: the proxy's processes, the backend (this process), wrk; and how
	// much of the machine stayed idle during the run.
	proxyCPU, backendCPU, wrkCPU time.Duration
	idle                         float64
}

func run(ctx context.Context, o options) error {
	wrk, err1 := exec.LookPath("wrk")
	nginx, err2 := exec.LookPath("nginx")
	if err2 != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginx, err2 = "/usr/sbin/nginx", nil
		}
	}
	if err1 != nil || err2 != nil {
		return errors.New("wrk and nginx are required: apt-get install -y wrk nginx-light")
	}
	dir, err := os.MkdirTemp("", "edgebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	agent := o.agentBin
	if agent == "" {
		agent = filepath.Join(dir, "skypanel-agent")
		build := exec.CommandContext(ctx, "go", "build", "-o", agent, "./agent/cmd/skypanel-agent")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the agent (run from the repository root, or pass --agent): %w", err)
		}
	}

	// The backend: a small fixed body, in this process.
	body := []byte(strings.Repeat("x", o.bodyBytes-1) + "\n")
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})}
	go backend.Serve(backendLn)
	defer backend.Close()
	backendAddr := backendLn.Addr().String()

	// The edge, as a subprocess of the agent binary.
	edgeAddr, edgeTLS := freeAddr(), freeAddr()
	if err := edge.WriteConfig(dir, edge.Config{Routes: []edge.Route{{Hosts: []string{benchHost}, Upstream: backendAddr}}}); err != nil {
		return err
	}
	var stops []func()
	var edgePIDs []int
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	startEdge := func(httpAddr, httpsAddr string, env ...string) error {
		cmd := exec.CommandContext(ctx, agent, "edge", "--config", filepath.Join(dir, edge.ConfigFile),
			"--http", httpAddr, "--https", httpsAddr, "--log-level", "warn")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start the edge: %w", err)
		}
		stops = append(stops, func() { stopProcess(cmd) })
		edgePIDs = append(edgePIDs, cmd.Process.Pid)
		return nil
	}
	if err := startEdge(edgeAddr, edgeTLS); err != nil {
		return err
	}
	edgeProcsAddr := freeAddr()
	if o.edgeProcs > 0 {
		if err := startEdge(edgeProcsAddr, freeAddr(), "GOMAXPROCS="+strconv.Itoa(o.edgeProcs)); err != nil {
			return err
		}
	}

	// nginx-light with keep-alive upstreams, its own prefix, pid and logs.
	nginxAddr := freeAddr()
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream backend {
    server %[2]s;
    keepalive 256;
  }
  server {
    listen %[3]s;
    server_name %[4]s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`, ndir, backendAddr, nginxAddr, benchHost)
	if err := os.WriteFile(filepath.Join(ndir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	nginxCmd := exec.CommandContext(ctx, nginx, "-p", ndir, "-c", filepath.Join(ndir, "nginx.conf"), "-e", filepath.Join(ndir, "error.log"))
	nginxCmd.Stderr = os.Stderr
	if err := nginxCmd.Start(); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	defer stopProcess(nginxCmd)

	targets := []*target{
		{name: "direct", url: "http://" + backendAddr + "/"},
		{name: "edge", url: "http://" + edgeAddr + "/", pid: edgePIDs[0]},
		{name: "nginx", url: "http://" + nginxAddr + "/", pid: nginxCmd.Process.Pid},
	}
	if o.edgeProcs > 0 {
		targets = append(targets, &target{name: fmt.Sprintf("edge, GOMAXPROCS=%d", o.edgeProcs), url: "http://" + edgeProcsAddr + "/", pid: edgePIDs[1]})
	}
	for _, t := range targets {
		if err := waitOK(ctx, t.url, len(body)); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	fmt.Fprintf(os.Stderr, "warming up...\n")
	for _, t := range targets {
		if _, err := runWrk(ctx, wrk, o, t, 2*time.Second); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	for round := 0; round < o.rounds; round++ {
		for k := range targets {
			t := targets[(round+k)%len(targets)]
			res, err := runWrk(ctx, wrk, o, t, o.duration)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %-20s %10.0f req/s  p50 %-8s p99 %-8s CPU/request: proxy %-7s backend %-7s wrk %-7s idle %2.0f%% %s\n",
				round+1, t.name, res.rps, res.p50, res.p99, res.proxyCPU, res.backendCPU, res.wrkCPU, 100*res.idle, res.errors)
			t.runs = append(t.runs, res)
		}
	}

	direct := median(targets[0].runs, func(r result) float64 { return r.rps })
	fmt.Printf("Edge throughput: %s, %d CPUs (shared by wrk, the proxy and the backend), %s/%s\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("wrk -t%d -c%d -d%s, %d rounds in rotating order, medians; backend body %d bytes; Host: %s\n\n",
		o.threads, o.connections, o.duration, o.rounds, o.bodyBytes, benchHost)
	fmt.Println("| target | requests/s | p50 | p99 | ratio to direct | proxy CPU per request | backend CPU per request | wrk CPU per request | machine idle | errors |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, t := range targets {
		rps := median(t.runs, func(r result) float64 { return r.rps })
		p50 := time.Duration(median(t.runs, func(r result) float64 { return float64(r.p50) }))
		p99 := time.Duration(median(t.runs, func(r result) float64 { return float64(r.p99) }))
		var errs []string
		for _, r := range t.runs {
			if r.errors != "" {
				errs = append(errs, r.errors)
			}
		}
		e := "none"
		if len(errs) > 0 {
			e = strings.Join(errs, "; ")
		}
		cpu := func(f func(result) time.Duration) string {
			return time.Duration(median(t.runs, func(r result) float64 { return float64(f(r)) })).Round(100 * time.Nanosecond).String()
		}
		proxy := "-"
		if t.pid != 0 {
			proxy = cpu(func(r result) time.Duration { return r.proxyCPU })
		}
		fmt.Printf("| %s | %.0f | %s | %s | %.2f× | %s | %s | %s | %.0f%% | %s |\n", t.name, rps, round(p50), round(p99), rps/direct,
			proxy, cpu(func(r result) time.Duration { return r.backendCPU }), cpu(func(r result) time.Duration { return r.wrkCPU }),
			100*median(t.runs, func(r result) float64 { return r.idle }), e)
	}
	fmt.Println()
	for _, t := range targets {
		var rs []string
		for _, r := range t.runs {
			rs = append(rs, fmt.Sprintf("%.0f", r.rps))
		}
		fmt.Printf("- %s, every round (req/s): %s\n", t.name, strings.Join(rs, ", "))
	}
	return nil
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, 0, len(rs))
	for _, r := range rs {
		v = append(v, f(r))
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reErrors  = regexp.MustCompile(`(?m)^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$`)
)

// runWrk runs wrk once against t and parses its summary; it measures the CPU the
// proxy, the backend and wrk spent meanwhile.
func runWrk(ctx context.Context, wrk string, o options, t *target, d time.Duration) (result, error) {
	cmd := exec.CommandContext(ctx, wrk, "-t"+strconv.Itoa(o.threads), "-c"+strconv.Itoa(o.connections),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "-H", "Host: "+benchHost, t.url)
	proxy0, self0 := procstat.TreeCPU(t.pid), procstat.CPU(os.Getpid())
	busy0, idle0 := procstat.Machine()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	busy1, idle1 := procstat.Machine()
	proxy1, self1 := procstat.TreeCPU(t.pid), procstat.CPU(os.Getpid())
	var res result
	m := reRPS.FindSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("wrk: no Requests/sec in its output: %s", out)
	}
	res.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range reLatency.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]
		lat := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			res.p50 = lat
		} else {
			res.p99 = lat
		}
	}
	var errs []string
	for _, m := range reErrors.FindAllSubmatch(out, -1) {
		errs = append(errs, strings.TrimSpace(string(m[1])))
	}
	res.errors = strings.Join(errs, ", ")
	if n := res.rps * d.Seconds(); n > 0 {
		per := func(cpu time.Duration) time.Duration { return time.Duration(float64(cpu) / n) }
		if t.pid != 0 {
			res.proxyCPU = per(proxy1 - proxy0)
		}
		res.backendCPU = per(self1 - self0)
		res.wrkCPU = per(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
	}
	if busy, idle := busy1-busy0, idle1-idle0; busy+idle > 0 {
		res.idle = float64(idle) / float64(busy+idle)
	}
	return res, nil
}

// waitOK waits until url answers 200 with a body of n bytes.
func waitOK(ctx context.Context, url string, n int) error {
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = benchHost
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(b) == n {
				return nil
			}
			err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not answering: %v", last)
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func stopProcess(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
