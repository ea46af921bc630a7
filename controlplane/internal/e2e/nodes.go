// Package e2e gives end-to-end tests real Docker nodes on this machine: network namespaces on
// a bridge in the root namespace, each running its own dockerd, made and removed by
// scripts/e2e/nodes.sh. The control plane under test listens on HostAddr, which every node
// reaches; nodes reach each other at Addr(i) and nothing outside 10.77.0.0/24.
//
// Only one set of nodes exists on a machine at a time (one bridge, fixed addresses), so Up
// holds a lock for the life of the test: e2e tests of different packages, which `go test ./...`
// runs in parallel, take turns.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HostAddr is the root namespace's address on the nodes' bridge: listen here to be reachable
// from every node.
const HostAddr = "10.77.0.1"

// Subnet is the nodes' network.
const Subnet = "10.77.0.0/24"

const (
	lockPath = "/tmp/skpn.session.lock"
	nodesDir = "/tmp/skpn"
	// prereqMissing is nodes.sh's exit status when root or a command is missing.
	prereqMissing = 3
)

// commands nodes.sh needs; checked up front so that a machine without them skips cleanly.
var commands = []string{"dockerd", "docker", "ip", "iptables", "nsenter", "unshare", "flock", "curl", "setsid"}

// Nodes is a running set of nodes numbered 1..N.
type Nodes struct {
	t      testing.TB
	script string
	n      int
	lock   *os.File
	once   sync.Once
}

// Up starts n fresh nodes (anything left from an earlier run is removed first) and registers
// their removal with t.Cleanup. Without root or the needed commands it skips the test, or
// fails it when CI=true: CI must run the e2e tests. With SKYPANEL_E2E_KEEP=1 the nodes stay up
// after the test for inspection (`scripts/e2e/nodes.sh status`, `... down`).
func Up(t testing.TB, n int) *Nodes {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	script, err := findScript()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if missing := missingPrerequisites(); len(missing) > 0 {
		unavailable(t, "e2e: cannot create nodes: %s (install: apt-get install -y docker.io iproute2 iptables util-linux curl)", strings.Join(missing, ", "))
	}
	lock, err := acquireLock(t)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	nodes := &Nodes{t: t, script: script, n: n, lock: lock}
	t.Cleanup(nodes.Down)

	start := time.Now()
	out, err := nodes.run(context.Background(), "up", strconv.Itoa(n))
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && exitErr.ExitCode() == prereqMissing {
			unavailable(t, "e2e: nodes.sh: %s", out)
		}
		t.Fatalf("e2e: nodes.sh up %d: %v\n%s", n, err, out)
	}
	t.Logf("e2e: %d nodes up in %s", n, time.Since(start).Round(10*time.Millisecond))
	return nodes
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func missingPrerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	return missing
}

// findScript finds scripts/e2e/nodes.sh at the root of the module, above the working
// directory (a test runs in its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find nodes.sh: %w", err)
	}
	for {
		p := filepath.Join(dir, "scripts", "e2e", "nodes.sh")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("find nodes.sh: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find nodes.sh: no go.mod above the working directory")
		}
		dir = parent
	}
}

// acquireLock waits, until the test's deadline, for other tests' nodes to go away.
func acquireLock(t testing.TB) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open node lock: %w", err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			deadline = dl.Add(-30 * time.Second)
		}
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: another test still holds the nodes", lockPath)
		}
		if !logged {
			t.Logf("e2e: waiting for another test's nodes (%s)", lockPath)
			logged = true
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Down removes the nodes and releases the lock. Up registers it as a cleanup; calling it
// earlier (to check what is left afterwards) is fine.
func (n *Nodes) Down() {
	n.once.Do(func() {
		defer n.lock.Close() // closing releases the flock
		if n.t.Failed() {
			n.dumpLogs()
		}
		if os.Getenv("SKYPANEL_E2E_KEEP") == "1" {
			n.t.Logf("e2e: SKYPANEL_E2E_KEEP=1: nodes left up; remove them with %s down", n.script)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := n.run(ctx, "down"); err != nil {
			n.t.Errorf("e2e: nodes.sh down: %v\n%s", err, out)
		}
	})
}

// dumpLogs puts the end of every node's logs (dockerd and spawned processes) into the test
// output, which is all CI keeps of a failed run.
func (n *Nodes) dumpLogs() {
	for i := 1; i <= n.n; i++ {
		logs, _ := filepath.Glob(filepath.Join(n.Dir(i), "*.log"))
		for _, l := range logs {
			data, err := os.ReadFile(l)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			n.t.Logf("e2e: last lines of %s:\n%s", l, strings.Join(lines, "\n"))
		}
	}
}

func (n *Nodes) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.script, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The kill of a timed-out nodes.sh must not leave its children holding the pipe.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// N is the number of nodes.
func (n *Nodes) N() int { return n.n }

func (n *Nodes) check(i int) {
	n.t.Helper()
	if i < 1 || i > n.n {
		n.t.Fatalf("e2e: node %d out of range 1..%d", i, n.n)
	}
}

// Addr is node i's address on the bridge (10.77.0.(i+10)): its advertise address.
func (n *Nodes) Addr(i int) string {
	n.check(i)
	return fmt.Sprintf("10.77.0.%d", i+10)
}

// Dir is node i's directory: dockerd's data, its log and spawned processes' pid and log files.
func (n *Nodes) Dir(i int) string { return filepath.Join(nodesDir, strconv.Itoa(i)) }

// DockerHost is node i's Docker Engine endpoint (a unix socket, usable from the root
// namespace too), e.g. for client.WithHost or the agent's --docker-host.
func (n *Nodes) DockerHost(i int) string {
	n.check(i)
	return "unix://" + filepath.Join(n.Dir(i), "d.sock")
}

// Exec runs a command in node i's network and UTS namespaces (DOCKER_HOST set to the node's
// Engine) and returns its combined output. It does not fail the test: a command may be
// expected to fail, e.g. while the node is cut off.
func (n *Nodes) Exec(ctx context.Context, i int, args ...string) (string, error) {
	n.check(i)
	return n.run(ctx, append([]string{"exec", strconv.Itoa(i)}, args...)...)
}

// Docker runs the docker CLI against node i's Engine and returns its combined output.
func (n *Nodes) Docker(ctx context.Context, i int, args ...string) (string, error) {
	n.check(i)
	return n.run(ctx, append([]string{"docker", strconv.Itoa(i)}, args...)...)
}

// Spawn starts a long-running command (an agent) in node i's namespaces in the background
// and returns its pid; its output goes to Log(i, name). The nodes' removal kills it.
func (n *Nodes) Spawn(i int, name string, args ...string) int {
	n.t.Helper()
	n.check(i)
	out, err := n.run(context.Background(), append([]string{"spawn", strconv.Itoa(i), name}, args...)...)
	if err != nil {
		n.t.Fatalf("e2e: spawn %s on node %d: %v\n%s", name, i, err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lastLine(out)))
	if err != nil {
		n.t.Fatalf("e2e: spawn %s on node %d: no pid in %q", name, i, out)
	}
	return pid
}

// Kill sends sig to the process Spawn started as name on node i; for SIGTERM, SIGINT,
// SIGQUIT and SIGKILL it returns once the process is gone (failing the test if it does not
// exit within 30 s).
func (n *Nodes) Kill(i int, name string, sig syscall.Signal) {
	n.t.Helper()
	n.check(i)
	out, err := n.run(context.Background(), "kill", strconv.Itoa(i), name, strconv.Itoa(int(sig)))
	if err != nil {
		n.t.Fatalf("e2e: kill %s on node %d: %v\n%s", name, i, err, out)
	}
}

// Log returns what the process Spawn started as name on node i has written so far.
func (n *Nodes) Log(i int, name string) string {
	n.check(i)
	data, _ := os.ReadFile(filepath.Join(n.Dir(i), name+".log"))
	return string(data)
}

// Cut takes node i's link down: it can reach neither the other nodes nor the host.
func (n *Nodes) Cut(i int) {
	n.t.Helper()
	n.check(i)
	if out, err := n.run(context.Background(), "cut", strconv.Itoa(i)); err != nil {
		n.t.Fatalf("e2e: cut node %d: %v\n%s", i, err, out)
	}
}

// Heal brings node i's link back up after Cut.
func (n *Nodes) Heal(i int) {
	n.t.Helper()
	n.check(i)
	if out, err := n.run(context.Background(), "heal", strconv.Itoa(i)); err != nil {
		n.t.Fatalf("e2e: heal node %d: %v\n%s", i, err, out)
	}
}

// Status is nodes.sh's node table (for logs).
func (n *Nodes) Status() string {
	out, _ := n.run(context.Background(), "status")
	return out
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
