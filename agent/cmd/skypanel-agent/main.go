// Command skypanel-agent runs on every Swarm node: it enrolls once with a one-time token,
// then keeps a mutual-TLS session to the control plane, reports the node's health and
// carries out the commands the control plane pushes (swarm init and join, node updates,
// gossip configuration).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/edge"
	"skypanel/agent/internal/enroll"
	"skypanel/agent/internal/executor"
	"skypanel/agent/internal/gossip"
	"skypanel/agent/internal/host"
	"skypanel/agent/internal/identity"
	"skypanel/agent/internal/link"
	"skypanel/agent/internal/renew"
	"skypanel/agent/internal/report"
	"skypanel/agent/internal/session"
	"skypanel/agent/internal/workloads"
	"skypanel/shared/buildinfo"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

const usage = `skypanel-agent runs on every Swarm node of a SkyPanel platform.

Usage:
  skypanel-agent enroll --agent-url URL --token TOKEN --advertise-addr IP [flags]
      Enroll this node once: check the control plane against the CA pin in the token,
      make the node's key (it never leaves the node), and store the node's identity in
      the data directory. Does not start the agent.
  skypanel-agent run [flags]
      Run the agent until SIGTERM or SIGINT: the command session with the control plane,
      heartbeat reports, certificate renewal and cluster gossip.
  skypanel-agent edge --config PATH [--http :80] [--https :443]
      Run the HTTP(S) edge proxy until SIGTERM or SIGINT: route requests by Host to app
      services, with the routes and certificates the agent writes to PATH (reloaded when
      the file changes). The agent runs this inside the edge container on edge nodes.
  skypanel-agent version
      Print the version.
  skypanel-agent help [enroll|run|edge]
      Print this text, or a command's flags.

Every flag can also come from the environment as SKYPANEL_AGENT_<FLAG> (upper case,
dashes as underscores; for example SKYPANEL_AGENT_TOKEN, which keeps the token out of
the process list). A flag on the command line wins over the environment.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cli(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli runs a subcommand until it is done or ctx ends and returns the exit code: 0 done,
// 1 failed, 2 bad usage.
func cli(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[1] == "edge" {
			fs, _ := edgeFlagSet(stdout)
			fs.Usage()
			return 0
		}
		if len(args) > 1 {
			if fs, _ := flagSet(args[1], stderr); fs != nil {
				fs.SetOutput(stdout)
				fs.Usage()
				return 0
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "edge":
		return cliEdge(ctx, args[1:], env, stderr)
	case "enroll", "run":
	default:
		fmt.Fprintf(stderr, "skypanel-agent: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	fs, cfg := flagSet(args[0], stderr)
	if err := parse(fs, args[1:], env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "skypanel-agent %s: %v\n", args[0], err)
		return 2
	}
	logger, err := newLogger(stderr, cfg.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "skypanel-agent %s: %v\n", args[0], err)
		return 2
	}
	switch args[0] {
	case "enroll":
		err = runEnroll(ctx, cfg, logger, stdout)
	case "run":
		err = runAgent(ctx, cfg, logger)
	}
	if err != nil {
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "skypanel-agent %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "skypanel-agent %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// config holds every flag of both commands.
type config struct {
	dataDir        string
	agentURL       string
	token          string
	advertiseAddr  string
	labels         string
	dockerHost     string
	reportInterval time.Duration
	gossipPort     int
	metricsListen  string
	logLevel       string
	edgeHTTPPort   int
	edgeHTTPSPort  int
}

func flagSet(cmd string, stderr io.Writer) (*flag.FlagSet, *config) {
	cfg := &config{}
	fs := flag.NewFlagSet("skypanel-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dataDir, "data-dir", identity.DefaultDir, "directory holding the node's key, certificate, CA and state")
	fs.StringVar(&cfg.dockerHost, "docker-host", "", "Docker Engine address, e.g. unix:///var/run/docker.sock (default: $DOCKER_HOST, else the platform's default socket)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error (logs are JSON on stderr)")
	switch cmd {
	case "enroll":
		fs.StringVar(&cfg.agentURL, "agent-url", "", "the control plane's agent listener, https://host:port (required)")
		fs.StringVar(&cfg.token, "token", "", "the one-time enrollment token spen.<pin>.<secret> (required; prefer SKYPANEL_AGENT_TOKEN)")
		fs.StringVar(&cfg.advertiseAddr, "advertise-addr", "", "IP address other nodes reach this one at, for Swarm and gossip (required)")
		fs.StringVar(&cfg.labels, "labels", "", "node labels k=v,k2=v2; recorded in state.json only: the enrollment request has no field for them yet, the token's labels apply")
	case "run":
		fs.DurationVar(&cfg.reportInterval, "report-interval", report.DefaultInterval, "interval of the first heartbeat report; later ones follow the control plane's answer")
		fs.IntVar(&cfg.gossipPort, "gossip-port", 0, "gossip port; 0 uses the port of the cluster's gossip configuration (7947)")
		fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "address to serve Prometheus /metrics, /healthz and /readyz on, e.g. 127.0.0.1:9470 (default off)")
		fs.IntVar(&cfg.edgeHTTPPort, "edge-http-port", 80, "host port of the edge's HTTP listener, on edge nodes")
		fs.IntVar(&cfg.edgeHTTPSPort, "edge-https-port", 443, "host port of the edge's HTTPS listener, on edge nodes")
	default:
		return nil, nil
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of skypanel-agent %s:\n", cmd)
		fs.PrintDefaults()
	}
	return fs, cfg
}

// parse sets flags from SKYPANEL_AGENT_* variables, then from args (which win).
func parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SKYPANEL_AGENT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(name); ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("agent_version", buildinfo.String()), nil
}

// parseLabels reads k=v,k2=v2.
func parseLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func runEnroll(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	switch {
	case cfg.agentURL == "":
		return usageError{errors.New("--agent-url is required")}
	case cfg.token == "":
		return usageError{errors.New("--token is required")}
	case net.ParseIP(cfg.advertiseAddr) == nil:
		return usageError{fmt.Errorf("--advertise-addr %q: want this node's IP address", cfg.advertiseAddr)}
	}
	labels, err := parseLabels(cfg.labels)
	if err != nil {
		return usageError{err}
	}
	log := logger.With("component", "enroll")
	if len(labels) > 0 {
		log.Warn("--labels are recorded locally only: the enrollment request cannot carry them yet; set labels from the control plane")
	}
	dir, err := identity.OpenDir(cfg.dataDir)
	if err != nil {
		return err
	}
	facts := host.ReadFacts(ctx)
	hf := &agentv1.HostFacts{
		Hostname: facts.Hostname, Os: facts.OS, Kernel: facts.Kernel, Arch: facts.Arch,
		Cpus: int32(facts.CPUs), MemoryBytes: facts.MemoryBytes,
		AgentVersion: buildinfo.String(), AdvertiseAddr: cfg.advertiseAddr,
	}
	if eng, err := docker.New(cfg.dockerHost); err == nil {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if info, err := eng.Info(ictx); err == nil {
			hf.DockerVersion = info.EngineVersion
		} else {
			log.Warn("docker engine not reachable; enrolling without its version", "error", err)
		}
		cancel()
		eng.Close()
	}
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := enroll.Enroll(ectx, enroll.Options{
		AgentURL: cfg.agentURL, Token: cfg.token, Facts: hf, Labels: labels, Dir: dir, Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled node %s in cluster %s as %s; identity stored in %s\nstart the agent with: skypanel-agent run --data-dir %s\n",
		res.NodeID, res.ClusterID, res.Role, dir.Path(), dir.Path())
	return nil
}

func runAgent(ctx context.Context, cfg *config, logger *slog.Logger) error {
	if cfg.reportInterval < report.MinInterval {
		return usageError{fmt.Errorf("--report-interval %s: want at least %s", cfg.reportInterval, report.MinInterval)}
	}
	if _, err := os.Stat(cfg.dataDir); err != nil {
		return fmt.Errorf("data dir: %w: %w", err, identity.ErrNotEnrolled)
	}
	dir, err := identity.OpenDir(cfg.dataDir)
	if err != nil {
		return err
	}
	id, err := dir.Load()
	if err != nil {
		return err
	}
	logger = logger.With("node_id", id.NodeID())
	logger.Info("starting", "agent_url", id.AgentURL(), "cluster_id", id.ClusterID(), "data_dir", dir.Path(),
		"certificate_expires", id.Certificate().NotAfter.UTC().Format(time.RFC3339))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	client := link.New(id.AgentURL(), id.TLSConfig())
	defer client.Close()
	eng, err := docker.New(cfg.dockerHost)
	if err != nil {
		return err
	}
	defer eng.Close()
	eng.Negotiate(ctx)

	g, err := gossip.New(gossip.Options{
		NodeName: id.NodeID(), AdvertiseAddr: id.AdvertiseAddr(), Port: cfg.gossipPort,
		StateFile: filepath.Join(dir.Path(), "gossip.json"),
		Logger:    logger.With("component", "gossip"),
	})
	if err != nil {
		return err
	}
	if err := g.Restore(); err != nil {
		logger.Warn("gossip configuration not restored; waiting for the control plane's", "component", "gossip", "error", err)
	}
	exec := executor.New(eng, g, id.AdvertiseAddr())
	// Any node can run the edge: the control plane sends edge configurations to edge-labelled
	// nodes only.
	exec.SetEdge(&edge.Node{Engine: eng.API(), Dir: filepath.Join(dir.Path(), "edge"),
		HTTPPort: cfg.edgeHTTPPort, HTTPSPort: cfg.edgeHTTPSPort})
	sess, err := session.New(session.Options{
		Client: client, Acks: id, Executor: exec, Logs: eng,
		AgentVersion:      buildinfo.String(),
		CertificateExpiry: func() time.Time { return id.Certificate().NotAfter },
		Logger:            logger.With("component", "session"),
		Metrics:           reg,
	})
	if err != nil {
		return err
	}
	ren, err := renew.New(renew.Options{
		Identity: id, Client: client, Renewed: client.Refresh,
		Logger: logger.With("component", "renew"), Metrics: reg,
	})
	if err != nil {
		return err
	}
	encryption := docker.OverlayEncryption("/")
	logger.Info("overlay encryption support detected", "overlay_encryption", encryption)
	rep, err := report.New(report.Options{
		Client: client, Sampler: &host.Sampler{}, Engine: eng, Peers: g,
		Interval: cfg.reportInterval, OverlayEncryption: encryption, StreamKeepalive: sess.Keepalive,
		Logger: logger.With("component", "report"), Metrics: reg,
	})
	if err != nil {
		return err
	}

	wl, err := workloads.New(workloads.Options{
		Client: client, Engine: eng, Interval: rep.Interval,
		Logger: logger.With("component", "workloads"), Metrics: reg,
	})
	if err != nil {
		return err
	}

	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error { return sess.Run(gctx) })
	grp.Go(func() error { return wl.Run(gctx) })
	grp.Go(func() error { return ren.Run(gctx) })
	grp.Go(func() error { return rep.Run(gctx) })
	grp.Go(func() error { g.Run(gctx); return nil })
	if cfg.metricsListen != "" {
		grp.Go(func() error {
			return serveMetrics(gctx, cfg.metricsListen, reg, sess, logger.With("component", "metrics"))
		})
	}
	err = grp.Wait()
	logger.Info("stopped")
	return err
}

// serveMetrics serves /metrics, /healthz (the process is up) and /readyz (the command
// stream is open) until ctx ends.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, sess *session.Session, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !sess.Connected() {
			http.Error(w, "not connected to the control plane", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	log.Info("serving metrics", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return fmt.Errorf("metrics listener: %w", err)
	}
}
