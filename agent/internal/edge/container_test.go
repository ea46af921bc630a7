package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"

	"skypanel/agent/internal/docker/dockertest"
)

// TestEdgeContainerOnARealEngine builds the edge image from a static binary, runs the
// edge container on a private dockerd in swarm mode, checks that it serves through its
// published port, and moves it between overlay networks.
func TestEdgeContainerOnARealEngine(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// A static binary whose `edge` command runs edge.Run, like the agent's.
	bin := filepath.Join(t.TempDir(), "skypanel-agent")
	build := exec.Command("go", "build", "-o", bin, "./testdata/edgebin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the edge binary: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)

	ref, err := EnsureImage(ctx, cli, bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "skypanel-edge:" + hex.EncodeToString(sum[:]); ref != want {
		t.Fatalf("image %q, want %q", ref, want)
	}
	first, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := EnsureImage(ctx, cli, bin); err != nil || again != ref {
		t.Fatalf("second EnsureImage: %q, %v", again, err)
	}
	if second, _ := cli.ImageInspect(ctx, ref); second.ID != first.ID || len(first.RootFS.Layers) != 1 {
		t.Fatalf("image changed or has %d layers: %s -> %s", len(first.RootFS.Layers), first.ID, second.ID)
	}

	// Swarm mode for attachable overlays; a user bridge for the ports (the private
	// Engine runs without the default bridge).
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkCreate(ctx, "edgeports", network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"org-a", "org-b", "org-c"} {
		if _, err := cli.NetworkCreate(ctx, n, network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
			t.Fatal(err)
		}
	}

	cfgDir := t.TempDir()
	if err := WriteConfig(cfgDir, Config{Routes: []Route{{Hosts: []string{"edge.test"}, Suspended: true}}}); err != nil {
		t.Fatal(err)
	}
	opts := ContainerOptions{
		Name: "skypanel-edge-test", Image: ref, ConfigDir: cfgDir, HTTPPort: 18080, HTTPSPort: 18443,
		Networks: []string{"org-a", "org-b"}, PortNetwork: "edgeports",
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cli.ContainerRemove(ctx, opts.Name, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove the edge container: %v", err)
		}
		if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("remove the edge image: %v", err)
		}
	})
	if err := EnsureContainer(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	c := inspectEdge(ctx, t, cli, opts.Name, "edgeports", "org-a", "org-b")
	if c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped || len(c.Mounts) != 1 || c.Mounts[0].RW ||
		c.Mounts[0].Destination != ContainerConfigDir {
		t.Fatalf("container settings: restart %v, mounts %+v", c.HostConfig.RestartPolicy, c.Mounts)
	}

	// The edge answers on the published port, with the configuration from the mount.
	pidBytes, err := os.ReadFile(filepath.Join(d.Dir, "d.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dialInNetns(pid, "127.0.0.1:"+strconv.Itoa(opts.HTTPPort))
		},
		DisableKeepAlives: true,
	}}
	eventually(t, "the edge container answers with the suspended page", func() bool {
		resp, err := hc.Get("http://edge.test/")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "suspended")
	})

	// Another set of networks: the same container, reconnected.
	opts.Networks = []string{"org-b", "org-c"}
	if err := EnsureContainer(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	moved := inspectEdge(ctx, t, cli, opts.Name, "edgeports", "org-b", "org-c")
	if moved.ID != c.ID {
		t.Fatal("changing networks replaced the container")
	}
	if err := EnsureContainer(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if same := inspectEdge(ctx, t, cli, opts.Name, "edgeports", "org-b", "org-c"); same.ID != c.ID || same.State.StartedAt != moved.State.StartedAt {
		t.Fatal("a repeated EnsureContainer changed the container")
	}

	// Another port: a new container with the same networks.
	opts.HTTPPort = 18081
	if err := EnsureContainer(ctx, cli, opts); err != nil {
		t.Fatal(err)
	}
	if replaced := inspectEdge(ctx, t, cli, opts.Name, "edgeports", "org-b", "org-c"); replaced.ID == c.ID {
		t.Fatal("a new port did not replace the container")
	}
}

// inspectEdge checks that the container runs attached to exactly networks.
func inspectEdge(ctx context.Context, t *testing.T, cli *client.Client, name string, networks ...string) container.InspectResponse {
	t.Helper()
	c, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !c.State.Running {
		logs, _ := cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		var out []byte
		if logs != nil {
			out, _ = io.ReadAll(logs)
			logs.Close()
		}
		t.Fatalf("edge container not running: %+v\n%s", c.State, out)
	}
	got := slices.Sorted(maps.Keys(c.NetworkSettings.Networks))
	if !slices.Equal(got, networks) {
		t.Fatalf("networks %v, want %v", got, networks)
	}
	return c
}

// dialInNetns connects to addr from inside the network namespace of process pid (the
// private dockerd's, where the container's ports are published). The socket keeps that
// namespace after the thread switches back.
func dialInNetns(pid int, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	conn, derr := net.DialTimeout("tcp", addr, 2*time.Second)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of serving
		// others in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	runtime.UnlockOSThread()
	return conn, derr
}
