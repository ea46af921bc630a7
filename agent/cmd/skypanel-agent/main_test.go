package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/docker/dockertest"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagsComeFromTheEnvironmentAndTheCommandLineWins(t *testing.T) {
	fs, cfg := flagSet("run", io.Discard)
	err := parse(fs, []string{"--data-dir", "/from/args"}, env(map[string]string{
		"SKYPANEL_AGENT_DATA_DIR":        "/from/env",
		"SKYPANEL_AGENT_REPORT_INTERVAL": "3s",
		"SKYPANEL_AGENT_METRICS_LISTEN":  "127.0.0.1:9470",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dataDir != "/from/args" || cfg.reportInterval != 3*time.Second || cfg.metricsListen != "127.0.0.1:9470" {
		t.Fatalf("config = %+v", cfg)
	}
	fs, _ = flagSet("run", io.Discard)
	if err := parse(fs, nil, env(map[string]string{"SKYPANEL_AGENT_GOSSIP_PORT": "many"})); err == nil ||
		!strings.Contains(err.Error(), "SKYPANEL_AGENT_GOSSIP_PORT") {
		t.Fatalf("a bad environment value gave %v", err)
	}
}

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", nil, false},
		{"zone=a", map[string]string{"zone": "a"}, false},
		{"zone=a, disk=ssd", map[string]string{"zone": "a", "disk": "ssd"}, false},
		{"edge=", map[string]string{"edge": ""}, false},
		{"novalue", nil, true},
		{"=x", nil, true},
	} {
		got, err := parseLabels(tc.in)
		if (err != nil) != tc.wantErr || len(got) != len(tc.want) {
			t.Errorf("parseLabels(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parseLabels(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	none := env(nil)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no command is a usage error", nil, 2},
		{"an unknown command is a usage error", []string{"install"}, 2},
		{"version succeeds", []string{"version"}, 0},
		{"help succeeds", []string{"help", "run"}, 0},
		{"enroll without a token is a usage error", []string{"enroll", "--agent-url", "https://x", "--advertise-addr", "10.0.0.1"}, 2},
		{"enroll with a host name as advertise address is a usage error", []string{"enroll", "--agent-url", "https://x", "--token", "t", "--advertise-addr", "node1"}, 2},
		{"run without an identity fails", []string{"run", "--data-dir", "/nonexistent/skypanel"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := cli(ctx, tc.args, none, &out, &errOut); got != tc.want {
				t.Fatalf("exit code %d, want %d; stderr: %s", got, tc.want, errOut.String())
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestEnrollThenRunCarriesOutASwarmInit drives the binary's two commands against the
// in-process control plane and a private Docker Engine: enroll, run, receive swarm_init and
// gossip_config, acknowledge with the swarm's tokens, report the node as a manager.
func TestEnrollThenRunCarriesOutASwarmInit(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	cp := controlplanetest.New(t, controlplanetest.Options{Keepalive: time.Second, ReportInterval: 1})
	dataDir := t.TempDir()
	ctx := context.Background()

	var out, errOut bytes.Buffer
	code := cli(ctx, []string{"enroll", "--agent-url", cp.URL, "--advertise-addr", "127.0.0.1",
		"--data-dir", dataDir, "--docker-host", d.Host}, env(map[string]string{"SKYPANEL_AGENT_TOKEN": cp.Token()}), &out, &errOut)
	if code != 0 {
		t.Fatalf("enroll exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "enrolled node node-1") {
		t.Fatalf("enroll said %q", out.String())
	}

	key := make([]byte, 32)
	rand.Read(key)
	cp.Queue(
		&agentv1.Command{Id: "init", Kind: &agentv1.Command_SwarmInit{SwarmInit: &agentv1.SwarmInit{AdvertiseAddr: "127.0.0.1", ListenAddr: "127.0.0.1:2377"}}},
		&agentv1.Command{Id: "gossip", Kind: &agentv1.Command_GossipConfig{GossipConfig: &agentv1.GossipConfig{Key: key, Label: "skypanel-c1", Port: 7947}}},
	)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- cli(runCtx, []string{"run", "--data-dir", dataDir, "--docker-host", d.Host, "--report-interval", "1s",
			"--gossip-port", strconv.Itoa(freePort(t)), "--log-level", "debug"}, env(nil), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("run exited %d", code)
		}
	}()

	cp.Wait("both acks", 2*time.Minute, func() bool { return len(cp.Acks()) >= 2 })
	acks := cp.Acks()
	if !acks[0].GetOk() || !acks[1].GetOk() {
		t.Fatalf("acks = %v", acks)
	}
	var tokens map[string]string
	if err := json.Unmarshal([]byte(acks[0].GetOutput()), &tokens); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"swarm_id", "swarm_node_id", "manager_join_token", "worker_join_token"} {
		if tokens[k] == "" {
			t.Fatalf("swarm_init output lacks %s: %s", k, acks[0].GetOutput())
		}
	}
	cp.Wait("a report of a swarm manager", time.Minute, func() bool {
		for _, r := range cp.Reports() {
			if r.GetDocker().GetRole() == agentv1.NodeRole_NODE_ROLE_MANAGER && r.GetDocker().GetSwarmNodeId() == tokens["swarm_node_id"] {
				return true
			}
		}
		return false
	})
}
