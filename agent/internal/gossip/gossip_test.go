package gossip

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// memberlist needs the UDP port too.
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

type agent struct {
	g    *Gossip
	addr string
}

func start(t *testing.T, name string) agent {
	t.Helper()
	return startWith(t, name, freePort(t), "")
}

func startWith(t *testing.T, name string, port int, stateFile string) agent {
	t.Helper()
	g, err := New(Options{
		NodeName: name, AdvertiseAddr: "127.0.0.1", BindAddr: "127.0.0.1", Port: port,
		Grace: 500 * time.Millisecond, RejoinInterval: 200 * time.Millisecond, Local: true,
		StateFile: stateFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return agent{g: g, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(50 * time.Millisecond) // poll interval
	}
}

func sees(a agent, reachable, unreachable []string) func() bool {
	return func() bool {
		r, u := a.g.Peers()
		return slices.Equal(r, reachable) && slices.Equal(u, unreachable)
	}
}

func TestPeersWithTheSameKeySeeEachOtherAndNoticeACrash(t *testing.T) {
	k := key(t)
	a, b := start(t, "node-a"), start(t, "node-b")
	ctx := context.Background()
	if err := a.g.Apply(ctx, Config{Key: k, Label: "skypanel-c1", Peers: []string{b.addr, a.addr}}); err != nil {
		t.Fatal(err)
	}
	if err := b.g.Apply(ctx, Config{Key: k, Label: "skypanel-c1", Peers: []string{a.addr}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to see b", sees(a, []string{"node-b"}, nil))
	eventually(t, "b to see a", sees(b, []string{"node-a"}, nil))

	b.g.Stop() // a crash: no leave message
	eventually(t, "a to report b unreachable", sees(a, nil, []string{"node-b"}))
}

func TestPeersWithAnotherKeyNeverMeetAndCountAsUnreachable(t *testing.T) {
	a, b := start(t, "node-a"), start(t, "node-b")
	ctx := context.Background()
	if err := a.g.Apply(ctx, Config{Key: key(t), Label: "skypanel-c1", Peers: []string{b.addr}}); err != nil {
		t.Fatal(err)
	}
	if err := b.g.Apply(ctx, Config{Key: key(t), Label: "skypanel-c1", Peers: []string{a.addr}}); err != nil {
		t.Fatal(err)
	}
	// After the grace period the configured peer, never seen, is reported by address.
	eventually(t, "a to report b's address unreachable", sees(a, nil, []string{b.addr}))
}

func TestANewKeyRestartsGossipAndPeersMeetAgain(t *testing.T) {
	k1, k2 := key(t), key(t)
	a, b := start(t, "node-a"), start(t, "node-b")
	ctx := context.Background()
	if err := a.g.Apply(ctx, Config{Key: k1, Label: "l", Peers: []string{b.addr}}); err != nil {
		t.Fatal(err)
	}
	if err := b.g.Apply(ctx, Config{Key: k2, Label: "l", Peers: []string{a.addr}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to report b unreachable", sees(a, nil, []string{b.addr}))
	if err := a.g.Apply(ctx, Config{Key: k2, Label: "l", Peers: []string{b.addr}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to see b with the shared key", sees(a, []string{"node-b"}, nil))
}

func TestApplyRejectsABadKey(t *testing.T) {
	a := start(t, "node-a")
	if err := a.g.Apply(context.Background(), Config{Key: []byte("short"), Label: "l"}); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestARestartedAgentGossipsWithTheSavedConfiguration(t *testing.T) {
	k := key(t)
	state := filepath.Join(t.TempDir(), "gossip.json")
	port := freePort(t)
	a, b := startWith(t, "node-a", port, state), start(t, "node-b")
	ctx := context.Background()
	if err := a.g.Apply(ctx, Config{Key: k, Label: "l", Peers: []string{b.addr}}); err != nil {
		t.Fatal(err)
	}
	if err := b.g.Apply(ctx, Config{Key: k, Label: "l", Peers: []string{a.addr}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see a", sees(b, []string{"node-a"}, nil))
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("gossip state mode %v, want 0600 (it holds the key)", fi.Mode().Perm())
	}

	a.g.Close()
	restarted := startWith(t, "node-a", port, state)
	if err := restarted.g.Restore(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted agent to see b", sees(restarted, []string{"node-b"}, nil))
}
