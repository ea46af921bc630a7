package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"skypanel/agent/internal/edge"
)

// edgeConfig holds the flags of the edge command.
type edgeConfig struct {
	configPath string
	httpAddr   string
	httpsAddr  string
	logLevel   string
}

func edgeFlagSet(stderr io.Writer) (*flag.FlagSet, *edgeConfig) {
	cfg := &edgeConfig{}
	fs := flag.NewFlagSet("skypanel-agent edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.configPath, "config", "", "the edge configuration file the agent writes (required); reloaded when it changes")
	fs.StringVar(&cfg.httpAddr, "http", ":80", "address of the plain-HTTP listener")
	fs.StringVar(&cfg.httpsAddr, "https", ":443", "address of the HTTPS listener")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error (logs are JSON on stderr)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of skypanel-agent edge:")
		fs.PrintDefaults()
	}
	return fs, cfg
}

// cliEdge runs the edge proxy until ctx ends and returns the exit code. The agent starts
// it inside the edge container (see edge.EnsureContainer).
func cliEdge(ctx context.Context, args []string, env func(string) (string, bool), stderr io.Writer) int {
	fs, cfg := edgeFlagSet(stderr)
	if err := parse(fs, args, env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "skypanel-agent edge: %v\n", err)
		return 2
	}
	if cfg.configPath == "" {
		fmt.Fprintln(stderr, "skypanel-agent edge: --config is required")
		return 2
	}
	logger, err := newLogger(stderr, cfg.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "skypanel-agent edge: %v\n", err)
		return 2
	}
	err = edge.Run(ctx, edge.Options{
		ConfigPath: cfg.configPath,
		HTTPAddr:   cfg.httpAddr,
		HTTPSAddr:  cfg.httpsAddr,
		Logger:     logger.With("component", "edge"),
	})
	if err != nil {
		fmt.Fprintf(stderr, "skypanel-agent edge: %v\n", err)
		return 1
	}
	return 0
}
