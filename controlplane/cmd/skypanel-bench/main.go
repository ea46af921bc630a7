// Command skypanel-bench measures the control plane's read RPCs under load: it resets a
// benchmark database, seeds it (organizations, members, activity) with COPY, starts the real
// control plane in-process on a loopback port, and has many concurrent clients call list and
// get RPCs over HTTP, as the dashboard does. It prints latency percentiles and throughput per
// RPC, with the machine they were measured on, for docs/benchmarks.md.
//
// `make bench` runs it against the skypanel_bench database. It is a load harness, not a test:
// it reports figures and never fails on them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"skypanel/controlplane/internal/benchcli"
)

// Config is one benchmark run.
type Config struct {
	// DatabaseURL is the benchmark database, which the run wipes; its name must contain
	// "bench", so a wrong URL cannot wipe a real one. Required.
	DatabaseURL string
	// Orgs is how many organizations (and users, one owner each) to seed. Default 10000.
	Orgs int
	// Activity is how many activity events to seed. Default 100000.
	Activity int
	// Clients is how many clients call concurrently, each with its own user. Default 100.
	Clients int
	// Duration is how long the measured phase lasts; Warmup runs before it, unmeasured.
	// Defaults 30s and 5s.
	Duration time.Duration
	Warmup   time.Duration
	// Rate is the total requests per second the clients aim at, spread evenly over them, with
	// latency counted from when each request was due. 0 (the default) is a closed loop: every
	// client sends its next request as soon as the previous one returns.
	Rate float64
	// DBMaxConns is the control plane's Postgres pool size; 0 keeps its default.
	DBMaxConns int
	// ServerLogLevel is the control plane's log level; its logs are formatted (as in
	// production) and discarded. Default info.
	ServerLogLevel string
	// CPUProfile and BlockProfile, when set, are files that receive pprof profiles of the
	// measured phase (the in-process server and clients together).
	CPUProfile   string
	BlockProfile string
}

func main() { benchcli.Main("skypanel-bench", parseFlags, run) }

func parseFlags(args []string, env func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("skypanel-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	benchcli.DatabaseURLFlag(fs, &c.DatabaseURL, env)
	fs.IntVar(&c.Orgs, "orgs", 10000, "organizations (and users) to seed")
	fs.IntVar(&c.Activity, "activity", 100000, "activity events to seed")
	fs.IntVar(&c.Clients, "clients", 100, "concurrent clients, each with its own user and organization")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured phase")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "unmeasured phase before it")
	fs.Float64Var(&c.Rate, "rate", 0, "total requests/s to aim at (0: closed loop, as fast as the server answers)")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", 0, "control plane's Postgres pool size (0: its default)")
	fs.StringVar(&c.ServerLogLevel, "server-log-level", "info", "control plane log level (logs are formatted, then discarded)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file")
	fs.StringVar(&c.BlockProfile, "blockprofile", "", "write a blocking profile of the measured phase to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if err := benchcli.RequireDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Orgs < 10 {
		errs = append(errs, errors.New("--orgs: must be at least 10"))
	}
	if c.Activity < 0 {
		errs = append(errs, errors.New("--activity: must not be negative"))
	}
	if c.Clients < 1 || c.Clients > c.Orgs {
		errs = append(errs, errors.New("--clients: must be between 1 and --orgs"))
	}
	if c.Duration <= 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("--duration must be positive and --warmup not negative"))
	}
	if c.Rate < 0 {
		errs = append(errs, errors.New("--rate: must not be negative"))
	}
	return c, errors.Join(errs...)
}

// run seeds the database, serves the control plane, drives the load and prints the report.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	started := time.Now()
	seeded, err := seed(ctx, cfg, logf)
	if err != nil {
		return err
	}
	cp, err := startControlPlane(ctx, cfg)
	if err != nil {
		return err
	}
	defer cp.stop(logf)
	logf("control plane on %s; %d clients, %s warm-up, %s measured", cp.url, cfg.Clients, cfg.Warmup, cfg.Duration)
	res, err := drive(ctx, cfg, cp, seeded, logf)
	if err != nil {
		return err
	}
	machine := describeMachine(ctx, cp)
	report(stdout, cfg, machine, res)
	logf("done in %s", time.Since(started).Round(time.Second))
	return nil
}
