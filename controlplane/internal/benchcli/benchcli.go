// Package benchcli is the command-line frame the benchmark commands share (skypanel-bench,
// skypanel-agentbench, skypanel-billingbench): the benchmark database flag, interrupt
// handling and exit codes, and finding the benchmark Postgres server's process.
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

	"github.com/jackc/pgx/v5/pgxpool"

	"skypanel/shared/procstat"
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

// PostgresServer returns the process id of the postmaster of the Postgres server pool talks
// to (the parent of any of its backends), so that a benchmark can count the server's CPU
// with procstat.TreeCPU; 0 when the server is not a process of this machine.
func PostgresServer(ctx context.Context, pool *pgxpool.Pool) int {
	var backend int
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	if postmaster := procstat.Parent(backend); postmaster > 1 {
		return postmaster
	}
	return 0
}
