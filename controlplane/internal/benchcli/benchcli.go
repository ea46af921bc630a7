// Package benchcli is the command-line frame the benchmark commands share (skypanel-bench,
// skypanel-agentbench, skypanel-billingbench): the benchmark database flag, interrupt
// handling and exit codes.
package benchcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// DatabaseEnv is the variable that names the benchmark database when --database-url is not
// given.
const DatabaseEnv = "SKYPANEL_BENCH_DATABASE_URL"

// DatabaseURLFlag registers --database-url on fs, defaulting to $SKYPANEL_BENCH_DATABASE_URL.
func DatabaseURLFlag(fs *flag.FlagSet, p *string, getenv func(string) string) {
	fs.StringVar(p, "database-url", getenv(DatabaseEnv), "benchmark Postgres URL; the run wipes this database (env "+DatabaseEnv+")")
}

// RequireDatabaseURL is the error for a missing benchmark database, or nil.
func RequireDatabaseURL(url string) error {
	if url == "" {
		return errors.New("--database-url (" + DatabaseEnv + ") is required")
	}
	return nil
}

// Main runs a benchmark command: parse reads its flags (and environment), run measures until
// it returns or the process is interrupted. It exits 0 after --help, 1 on an error (printed
// after the command's name).
func Main[C any](name string, parse func(args []string, getenv func(string) string, stderr io.Writer) (C, error),
	run func(ctx context.Context, cfg C, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		err = run(ctx, cfg, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		stop()
		os.Exit(1)
	}
}
