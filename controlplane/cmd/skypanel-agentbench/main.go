// Command skypanel-agentbench measures the control plane's agent side, for docs/benchmarks.md:
//
//   - sim: many simulated agents, each with its own key and node certificate from the real
//     Enroll RPC, its own HTTP/2 mutual-TLS connection, a Connect stream held open and a
//     Report every 10 s (spread evenly over the interval), against the real control plane
//     binary on a real Postgres. It steps the agent count up and prints, per step, the Report
//     latency percentiles and the control plane's RSS and CPU, then the largest count that
//     meets the goal (p99 under 50 ms, RSS under 1 GiB).
//   - real: one real skypanel-agent reporting every 10 s, side by side with Debian's
//     prometheus-node-exporter scraped every 10 s; it prints both processes' average RSS and
//     CPU share of one core.
//
// The control plane runs as its own process (so its RSS and CPU are its own), built from this
// checkout or taken from --bin-dir. Each part wipes the benchmark database first. It is a load
// harness, not a test: it prints figures and never fails on them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skypanel/controlplane/internal/benchcli"
)

// Config is one benchmark run.
type Config struct {
	// DatabaseURL is the benchmark database, which every part wipes. Required.
	DatabaseURL string
	// Parts to run: "sim", "real" or "all" (the default).
	Parts string
	// BinDir holds skypanel-controlplane and skypanel-agent. Empty (the default) builds them
	// from this checkout into a temporary directory.
	BinDir string
	// Steps are the simulated agent counts, in order. Default 500,1000,2000,5000,10000.
	Steps []int
	// Interval is the simulated agents' report interval (the control plane's answer wins).
	// Default 10s.
	Interval time.Duration
	// Warmup runs after a step's agents are connected, unmeasured; Measure is the measured
	// window. Defaults 10s and 30s.
	Warmup  time.Duration
	Measure time.Duration
	// P99Goal and RSSGoal are the goal a step must meet. Defaults 50ms and 1 GiB.
	P99Goal time.Duration
	RSSGoal int64
	// AllSteps runs every step even after one misses the goal, to show the whole curve; the
	// count reported is still the last of the passing steps from the first on.
	AllSteps bool
	// EnrollConcurrency is how many agents enroll at once. Default 16.
	EnrollConcurrency int
	// Duration is how long the real agent and the exporter are sampled. Default 10m.
	Duration time.Duration
	// NodeExporter is the prometheus-node-exporter binary. Default
	// /usr/bin/prometheus-node-exporter (Debian's package).
	NodeExporter string
	// DBMaxConns is the control plane's Postgres pool size; 0 keeps its default
	// (max(4, CPUs)).
	DBMaxConns int
	// MemoryLimit is the control plane's GOMEMLIMIT; "" leaves the Go runtime's default
	// (none). Default 1000MiB: what the README's configuration advises for a 1 GiB budget,
	// the RSS goal.
	MemoryLimit string
	// Peers is how many peers each simulated agent's reports name as reachable, as gossip
	// does in a cluster of Peers+1 nodes (a step's agents in groups of that size); like real
	// agents, they name them until the control plane echoes their digest. Default 19
	// (clusters of 20 nodes); 0 names none, as in a cluster where gossip never starts.
	Peers int
	// ServerLogLevel is the control plane's log level; its logs go to a file in the work
	// directory. Default info, as in production.
	ServerLogLevel string
	// Keep keeps the work directory (logs, binaries) instead of deleting it.
	Keep bool
}

func main() { benchcli.Main("skypanel-agentbench", parseFlags, run) }

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("skypanel-agentbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var steps string
	benchcli.DatabaseURLFlag(fs, &cfg.DatabaseURL, getenv)
	fs.StringVar(&cfg.Parts, "parts", "all", "which parts to run: sim, real or all")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "directory with skypanel-controlplane and skypanel-agent (default: build them)")
	fs.StringVar(&steps, "steps", "500,1000,2000,5000,10000", "simulated agent counts, comma-separated, ascending")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "simulated agents' report interval")
	fs.DurationVar(&cfg.Warmup, "warmup", 10*time.Second, "unmeasured time per step once its agents are connected")
	fs.DurationVar(&cfg.Measure, "measure", 30*time.Second, "measured window per step")
	fs.DurationVar(&cfg.P99Goal, "p99-goal", 50*time.Millisecond, "a step passes with p99 Report latency under this")
	fs.Int64Var(&cfg.RSSGoal, "rss-goal", 1<<30, "a step passes with control-plane RSS under this many bytes")
	fs.BoolVar(&cfg.AllSteps, "all-steps", false, "run every step even after one misses the goal")
	fs.IntVar(&cfg.EnrollConcurrency, "enroll-concurrency", 16, "agents enrolling at once")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long the real agent and the exporter are sampled")
	fs.StringVar(&cfg.NodeExporter, "node-exporter", "/usr/bin/prometheus-node-exporter", "prometheus-node-exporter binary")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", 0, "the control plane's Postgres pool size (0: its default)")
	fs.StringVar(&cfg.MemoryLimit, "cp-memory-limit", "1000MiB", "the control plane's GOMEMLIMIT, as the README advises for a 1 GiB budget (\"\": none)")
	fs.IntVar(&cfg.Peers, "peers", 19, "peers each simulated agent's reports name as reachable, as in a cluster of peers+1 nodes with gossip (0: none)")
	fs.StringVar(&cfg.ServerLogLevel, "server-log-level", "info", "the control plane's log level")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory (logs, binaries)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var errs []error
	if err := benchcli.RequireDatabaseURL(cfg.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	switch cfg.Parts {
	case "all", "sim", "real":
	default:
		errs = append(errs, fmt.Errorf("--parts %q: want sim, real or all", cfg.Parts))
	}
	prev := 0
	for _, s := range strings.Split(steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= prev {
			errs = append(errs, fmt.Errorf("--steps %q: want ascending positive counts", steps))
			break
		}
		cfg.Steps, prev = append(cfg.Steps, n), n
	}
	if cfg.Interval < time.Second || cfg.Measure <= 0 || cfg.Warmup < 0 || cfg.Duration < 20*time.Second {
		errs = append(errs, errors.New("--interval must be at least 1s, --measure positive, --duration at least 20s"))
	}
	if cfg.EnrollConcurrency < 1 {
		errs = append(errs, errors.New("--enroll-concurrency must be at least 1"))
	}
	return cfg, errors.Join(errs...)
}

func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	raiseFileLimit(stderr)
	work, err := os.MkdirTemp("", "skypanel-agentbench-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if cfg.Keep {
		fmt.Fprintf(stderr, "work directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	bins, err := binaries(ctx, cfg.BinDir, work, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# skypanel-agentbench, %s\n%s\n", time.Now().UTC().Format(time.RFC1123), machine())
	if cfg.Parts == "all" || cfg.Parts == "sim" {
		if err := runSim(ctx, cfg, bins, work, stdout, stderr); err != nil {
			return fmt.Errorf("simulated agents: %w", err)
		}
	}
	if cfg.Parts == "all" || cfg.Parts == "real" {
		if err := runReal(ctx, cfg, bins, work, stdout, stderr); err != nil {
			return fmt.Errorf("real agent: %w", err)
		}
	}
	return nil
}

// raiseFileLimit lifts the open-files limit to its hard maximum (as root, to 1<<20): every
// simulated agent holds a connection, and the control plane, started from here, inherits it.
func raiseFileLimit(stderr io.Writer) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	want := lim
	if want.Max < 1<<20 && os.Geteuid() == 0 {
		want.Max = 1 << 20
	}
	want.Cur = want.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want.Max, want.Cur = lim.Max, lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			fmt.Fprintf(stderr, "open files limit stays %d: %v\n", lim.Cur, err)
			return
		}
	}
}
