package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skypanel/agent/internal/edge"
)

func TestEdgeCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli(context.Background(), []string{"help", "edge"}, env(nil), &out, &errOut); code != 0 || !strings.Contains(out.String(), "-config") {
		t.Fatalf("help edge: %d %q", code, out.String())
	}
	out.Reset()
	if code := cli(context.Background(), []string{"--help"}, env(nil), &out, &errOut); code != 0 || !strings.Contains(out.String(), "skypanel-agent edge --config PATH") {
		t.Fatalf("--help does not describe the edge command: %q", out.String())
	}
	errOut.Reset()
	if code := cli(context.Background(), []string{"edge"}, env(nil), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--config is required") {
		t.Fatalf("edge without --config: %d %q", code, errOut.String())
	}

	// It runs until its context ends, with the config from the environment.
	dir := t.TempDir()
	if err := edge.WriteConfig(dir, edge.Config{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	errOut.Reset()
	code := cli(ctx, []string{"edge", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"},
		env(map[string]string{"SKYPANEL_AGENT_CONFIG": filepath.Join(dir, edge.ConfigFile)}), &out, &errOut)
	if code != 0 || !strings.Contains(errOut.String(), "edge serving") {
		t.Fatalf("edge run: %d %s", code, errOut.String())
	}
}
