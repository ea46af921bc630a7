// Command skypanel-billingbench measures hourly metering: it resets a benchmark database,
// seeds billable runs for many resources across many organizations with COPY, meters one
// period with the real billing.Meter, checks that every charge and every wallet is what the
// seed implies, and prints the time as Markdown for docs/benchmarks.md.
//
// `make bench` runs it against the skypanel_bench database. It is a benchmark, not a test:
// it reports figures and fails only when the books are wrong.
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
	// Resources is how many billable resources run in the metered period. Default 100000.
	Resources int
	// Orgs is how many organizations they belong to. Default 10000.
	Orgs int
	// BatchSize is how many resources one metering transaction charges. Default 1000.
	BatchSize int
	// Workers is how many batches are charged at once. Default 2.
	Workers int
	// Rounds is how many times the period is seeded afresh and metered; the report gives
	// each. Default 3.
	Rounds int
}

func main() { benchcli.Main("skypanel-billingbench", parseFlags, run) }

func parseFlags(args []string, env func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("skypanel-billingbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	benchcli.DatabaseURLFlag(fs, &c.DatabaseURL, env)
	fs.IntVar(&c.Resources, "resources", 100_000, "billable resources running in the metered period")
	fs.IntVar(&c.Orgs, "orgs", 10_000, "organizations they belong to")
	fs.IntVar(&c.BatchSize, "batch", 1000, "resources charged per transaction")
	fs.IntVar(&c.Workers, "workers", 2, "batches charged at once")
	fs.IntVar(&c.Rounds, "rounds", 3, "times to seed and meter a period")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if err := benchcli.RequireDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Orgs < 1 || c.Resources < c.Orgs {
		errs = append(errs, errors.New("--orgs must be at least 1 and --resources at least --orgs"))
	}
	if c.BatchSize < 1 || c.Workers < 1 || c.Rounds < 1 {
		errs = append(errs, errors.New("--batch, --workers and --rounds must be positive"))
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	started := time.Now()
	b, err := newBench(ctx, cfg, logf)
	if err != nil {
		return err
	}
	defer b.close()
	var rounds []round
	for i := range cfg.Rounds {
		r, err := b.round(ctx, i)
		if err != nil {
			return err
		}
		logf("round %d: metered %d resources in %s", i+1, r.report.Resources, r.report.Elapsed.Round(time.Millisecond))
		rounds = append(rounds, r)
	}
	report(stdout, cfg, b.describeMachine(ctx), rounds)
	logf("done in %s", time.Since(started).Round(time.Second))
	return nil
}
