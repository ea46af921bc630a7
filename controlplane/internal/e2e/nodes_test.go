package e2e_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/e2e"
)

const image = "skypanel-e2e/whoami:1"

func TestThreeNodesFormASwarmServeAcrossNodesAndLeaveNothingBehind(t *testing.T) {
	nodes := e2e.Up(t, 3)
	ctx := t.Context()

	bin := whoamiBinary(t)
	imageTar := imageOf(t, bin)
	for i := 1; i <= 3; i++ {
		cmd := exec.CommandContext(ctx, "docker", "-H", nodes.DockerHost(i), "import",
			"--change", `ENTRYPOINT ["/whoami"]`, "-", image)
		cmd.Stdin = bytes.NewReader(imageTar)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "import the image on node %d: %s", i, out)
	}

	docker := func(i int, args ...string) string {
		t.Helper()
		out, err := nodes.Docker(ctx, i, args...)
		require.NoError(t, err, "docker %s on node %d: %s", strings.Join(args, " "), i, out)
		return strings.TrimSpace(out)
	}
	docker(1, "swarm", "init", "--advertise-addr", nodes.Addr(1))
	token := docker(1, "swarm", "join-token", "-q", "worker")
	for i := 2; i <= 3; i++ {
		docker(i, "swarm", "join", "--advertise-addr", nodes.Addr(i), "--token", token, nodes.Addr(1)+":2377")
	}
	eventually(t, 60*time.Second, "three ready nodes with their own hostnames", func() bool {
		out := docker(1, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		return sortedLines(out) == "skpn1 Ready\nskpn2 Ready\nskpn3 Ready"
	})

	// dnsrr on an overlay: what works without IPVS (see machine.md).
	docker(1, "network", "create", "--driver", "overlay", "--attachable", "e2e")
	docker(1, "service", "create", "--detach", "--no-resolve-image", "--name", "web", "--mode", "global",
		"--endpoint-mode", "dnsrr", "--network", "e2e", image, "serve", ":8080")
	answer := regexp.MustCompile(`(?m)^(\S+) (\S+)$`)
	eventually(t, 90*time.Second, "a container on node 3 reaching the service's task on every node", func() bool {
		out, err := nodes.Docker(ctx, 3, "run", "--rm", "--network", "e2e", image, "fetch", "web", "8080")
		if err != nil {
			return false
		}
		hosts := map[string]bool{}
		for _, m := range answer.FindAllStringSubmatch(out, -1) {
			hosts[m[2]] = true
		}
		return len(hosts) == 3
	})

	// A spawned process lives in the node's namespaces: reachable at the node's address,
	// cut off with its link, back after heal, gone after kill.
	whoamiBin := filepath.Join(nodes.Dir(2), "whoami")
	require.NoError(t, os.WriteFile(whoamiBin, bin, 0o755))
	nodes.Spawn(2, "probe", whoamiBin, "serve", nodes.Addr(2)+":9000")
	url := "http://" + nodes.Addr(2) + ":9000/"
	client := &http.Client{Timeout: time.Second}
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(body)), err
	}
	eventually(t, 30*time.Second, "the spawned process answering with the node's hostname", func() bool {
		body, err := get()
		return err == nil && body == "skpn2"
	})
	nodes.Cut(2)
	_, err := get()
	require.Error(t, err, "a cut node is unreachable")
	out, err := nodes.Exec(ctx, 1, "curl", "-fsS", "--max-time", "1", url)
	require.Error(t, err, "other nodes cannot reach a cut node either: %s", out)
	nodes.Heal(2)
	eventually(t, 30*time.Second, "the healed node answering again", func() bool {
		_, err := get()
		return err == nil
	})
	nodes.Kill(2, "probe", syscall.SIGKILL)
	_, err = get()
	require.Error(t, err, "a killed process no longer answers")

	t.Log(nodes.Status())
	start := time.Now()
	nodes.Down()
	t.Logf("nodes down in %s", time.Since(start).Round(10*time.Millisecond))
	requireNothingLeft(t)
}

// requireNothingLeft checks what nodes.sh down promises: no namespace, link, directory,
// mount or live process of any node.
func requireNothingLeft(t testing.TB) {
	t.Helper()
	netns, _ := filepath.Glob("/var/run/netns/skpn*")
	require.Empty(t, netns, "network namespaces")
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	require.NoError(t, err)
	require.NotRegexp(t, `\d+: (skpbr0|skpv\d+)[:@]`, string(links), "links")
	_, err = os.Stat("/tmp/skpn")
	require.True(t, os.IsNotExist(err), "node directory: %v", err)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	require.NotContains(t, string(mounts), "/tmp/skpn/", "mounts")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		// A zombie (PID 1 here never reaps) has an empty command line.
		if err != nil || !bytes.Contains(cmdline, []byte("/tmp/skpn/")) {
			continue
		}
		t.Errorf("process left: %s %s", filepath.Dir(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	rules, err := exec.Command("iptables", "-S", "FORWARD").Output()
	require.NoError(t, err)
	require.NotContains(t, string(rules), "skpbr0", "iptables rules")
}

// whoamiBinary builds testdata/whoami statically: images here are one static binary, as no
// registry is reachable.
func whoamiBinary(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "whoami")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/whoami")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "build whoami: %s", msg)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

// imageOf returns a tarball of one file, /whoami, for `docker import`.
func imageOf(t testing.TB, bin []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "whoami", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Now()}))
	_, err := tw.Write(bin)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
