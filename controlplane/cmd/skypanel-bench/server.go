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
	"time"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/server"
	"skypanel/controlplane/internal/store"
)

// controlPlane is the real server, running in this process on a loopback port.
type controlPlane struct {
	url   string
	store *store.Store
	halt  context.CancelFunc
	// done closes when Run returns; runErr is what it returned.
	done   chan struct{}
	runErr error
	// cleanup closes what startControlPlane opened, after Run returned.
	cleanup []func()
}

// startControlPlane serves the control plane as production does (default config, production
// password costs), except for the database, the port and where logs go.
func startControlPlane(ctx context.Context, cfg Config) (_ *controlPlane, err error) {
	cp := &controlPlane{done: make(chan struct{}), halt: func() {}}
	defer func() {
		if err != nil {
			cp.close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cp.cleanup = append(cp.cleanup, func() { ln.Close() })
	cp.url = "http://" + ln.Addr().String()
	keyFile, err := masterKeyFile()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cp.cleanup = append(cp.cleanup, func() { os.Remove(keyFile) })

	cpCfg := config.Flags(flag.NewFlagSet("controlplane", flag.ContinueOnError))
	cpCfg.DatabaseURL = cfg.DatabaseURL
	cpCfg.Listen = ln.Addr().String()
	cpCfg.MasterKeyFile = keyFile
	cpCfg.AgentListen = "127.0.0.1:0" // not served: no agents in this benchmark
	cpCfg.LogLevel = cfg.ServerLogLevel
	cpCfg.DBMaxConns = cfg.DBMaxConns
	if err := cpCfg.ValidateServe(); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cp.store, err = store.Open(ctx, store.Options{URL: cpCfg.DatabaseURL, MaxConns: int32(cpCfg.DBMaxConns)})
	if err != nil {
		return nil, err
	}
	cp.cleanup = append(cp.cleanup, cp.store.Close)
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: cpCfg.Level()}))
	srv, err := server.New(ctx, server.Options{Config: cpCfg, Store: cp.store, Logger: logger})
	if err != nil {
		return nil, err
	}
	runCtx, halt := context.WithCancel(context.WithoutCancel(ctx))
	cp.halt = halt
	go func() { cp.runErr = srv.Run(runCtx, server.Listeners{Public: ln}); close(cp.done) }()
	if err := cp.waitReady(ctx); err != nil {
		cp.stop(func(string, ...any) {})
		return nil, err
	}
	return cp, nil
}

// masterKeyFile writes a fresh master key for this run into a private temporary file. The
// benchmark database is wiped every run, so nothing sealed with it outlives the run.
func masterKeyFile() (string, error) {
	line, err := secrets.GenerateKeyLine("bench")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "skypanel-bench-master-key-*")
	if err != nil {
		return "", fmt.Errorf("master key file: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return "", fmt.Errorf("master key file: %w", err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		return "", fmt.Errorf("master key file: %w", err)
	}
	return f.Name(), nil
}

func (cp *controlPlane) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(cp.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("control plane not ready within 20s: %w", err)
		}
		select {
		case <-cp.done:
			return fmt.Errorf("control plane stopped: %w", cp.runErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (cp *controlPlane) stop(logf func(string, ...any)) {
	cp.halt()
	select {
	case <-cp.done:
		if cp.runErr != nil && !errors.Is(cp.runErr, context.Canceled) {
			logf("control plane stopped with: %v", cp.runErr)
		}
	case <-time.After(30 * time.Second):
		logf("control plane did not stop within 30s")
	}
	cp.close()
}

func (cp *controlPlane) close() {
	for i := len(cp.cleanup) - 1; i >= 0; i-- {
		cp.cleanup[i]()
	}
	cp.cleanup = nil
}
