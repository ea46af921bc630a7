// Command skypanel-controlplane runs SkyPanel's control plane: the API, the dashboard and
// the background jobs. See `skypanel-controlplane help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/server"
	"skypanel/controlplane/internal/store"
	"skypanel/shared/buildinfo"
)

const usage = `skypanel-controlplane runs SkyPanel's control plane.

Usage:
  skypanel-controlplane [serve] [flags]        apply migrations, then serve the API and dashboard
  skypanel-controlplane migrate up|down|status [flags]
                                               up: apply pending migrations; down: revert the
                                               newest one (--all: every one); status: list them
  skypanel-controlplane admin create --email E [--password P] [flags]
                                               create a platform admin (or make an existing
                                               user one); prints a generated password if none given
  skypanel-controlplane master-key generate --out FILE [--id ID]
                                               write a new master key file (mode 0600); it
                                               seals secrets at rest: keep it, and back it up
  skypanel-controlplane version

Every flag can also be set in the environment: --database-url is SKYPANEL_DATABASE_URL.
Run a command with -h for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "skypanel-controlplane:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr)
	case "migrate":
		return migrate(ctx, args, stdout, stderr)
	case "admin":
		return admin(ctx, args, stdout, stderr)
	case "master-key":
		return masterKey(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildinfo.String())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// parse reads flags and environment into a validated Config.
func parse(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.Flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if err := cfg.ApplyEnv(fs, os.Getenv); err != nil {
		return nil, nil, err
	}
	validate := cfg.Validate
	if name == "serve" {
		validate = cfg.ValidateServe
	}
	if err := validate(); err != nil {
		return nil, nil, err
	}
	return cfg, fs, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.Level()}))
}

func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	return store.Open(ctx, store.Options{URL: cfg.DatabaseURL, MaxConns: int32(cfg.DBMaxConns)})
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, _, err := parse("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.MigrateUp(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		logger.Info("migrations applied", "versions", applied)
	}
	srv, err := server.New(ctx, server.Options{Config: cfg, Store: st, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	agentLn, err := net.Listen("tcp", cfg.AgentListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen %s: %w", cfg.AgentListen, err)
	}
	logger.Info("skypanel control plane starting", "version", buildinfo.String())
	return srv.Run(ctx, server.Listeners{Public: ln, Agent: agentLn})
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("migrate: say up, down or status")
	}
	dir, args := args[0], args[1:]
	var all bool
	cfg, _, err := parse("migrate "+dir, args, stderr, func(fs *flag.FlagSet) {
		if dir == "down" {
			fs.BoolVar(&all, "all", false, "revert every migration (drops all data)")
		}
	})
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	switch dir {
	case "up":
		done, err := st.MigrateUp(ctx)
		for _, v := range done {
			fmt.Fprintf(stdout, "applied %04d\n", v)
		}
		if err == nil && len(done) == 0 {
			fmt.Fprintln(stdout, "up to date")
		}
		return err
	case "down":
		steps := 1
		if all {
			steps = 0
		}
		done, err := st.MigrateDown(ctx, steps)
		for _, v := range done {
			fmt.Fprintf(stdout, "reverted %04d\n", v)
		}
		return err
	case "status":
		sts, err := st.MigrationStatuses(ctx)
		if err != nil {
			return err
		}
		for _, s := range sts {
			state := "pending"
			if s.AppliedAt != nil {
				state = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(stdout, "%04d_%s\t%s\n", s.Version, s.Name, state)
		}
		return nil
	}
	return fmt.Errorf("migrate: unknown direction %q (up, down, status)", dir)
}

// masterKey runs `master-key generate`.
func masterKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return errors.New("master-key: the only subcommand is `generate`")
	}
	fs := flag.NewFlagSet("master-key generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write (must not exist)")
	id := fs.String("id", "k1", "key id (1-16 of a-z, 0-9); name each rotation's key differently")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out: say where to write the key")
	}
	line, err := secrets.GenerateKeyLine(*id)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	_, err = fmt.Fprintf(f, "# SkyPanel master keys: the first line seals new secrets; later lines still open old ones.\n%s\n", line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote master key %q to %s\n", *id, *out)
	return nil
}
