package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-containerregistry/pkg/registry"

	"skypanel/agent/internal/docker/dockertest"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

const testImage = "skypanel-test/app:1"

// swarmEngine starts a private dockerd, makes it a single-node swarm and loads the test
// app image into it. The daemon (and its swarm) goes away with the test.
func swarmEngine(t *testing.T, ctx context.Context) *Engine {
	t.Helper()
	e, d := singleNodeSwarm(t, ctx, dockertest.Options{})
	dockertest.AppImage(t, d, testImage)
	return e
}

// singleNodeSwarm starts a private dockerd with opts and makes it a single-node swarm.
func singleNodeSwarm(t *testing.T, ctx context.Context, opts dockertest.Options) (*Engine, *dockertest.Daemon) {
	t.Helper()
	d := dockertest.Start(t, opts)
	e, err := New(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.SwarmInit(ctx, "127.0.0.1", "127.0.0.1:2377"); err != nil {
		t.Fatal(err)
	}
	return e, d
}

func appSpec(deployment string, replicas int32) *agentv1.ServiceApply {
	return &agentv1.ServiceApply{
		ServiceName:  "app-1",
		DeploymentId: deployment,
		Image:        testImage,
		Env:          []string{"APP_VERSION=" + deployment},
		Command:      []string{"/app", "serve", ":8080"},
		Replicas:     replicas,
		CpuMillis:    200,
		MemoryBytes:  64 << 20,
		HealthCheck: &agentv1.WorkloadHealthCheck{
			Command: []string{"/app", "check"}, IntervalMs: 500, TimeoutMs: 2000, Retries: 3, StartPeriodMs: 5000,
		},
		Network:           "org-a",
		Labels:            map[string]string{LabelManaged: "true", "skypanel.app": "a1"},
		RollbackOnFailure: true,
		MonitorMs:         1000,
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// running reports whether app-1 runs want tasks of deployment, all healthy and running.
func running(ctx context.Context, e *Engine, deployment string, want int) func() (bool, string) {
	return func() (bool, string) {
		sts, err := e.ServiceStatuses(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range sts {
			if s.GetServiceName() != "app-1" {
				continue
			}
			n := 0
			for _, ts := range s.GetTasks() {
				if ts.GetState() == "running" && ts.GetDesiredState() == "running" && ts.GetDeploymentId() == deployment {
					n++
				}
			}
			return n == want && s.GetDeploymentId() == deployment && s.GetUpdateState() != "updating", fmt.Sprint(s)
		}
		return false, fmt.Sprint(sts)
	}
}

// TestAppServicesOnARealSwarm walks what the control plane drives on a manager for an app:
// its organization's network, the first deployment, the same command again after a lost
// acknowledgement, its logs, its reported state, a second deployment, and removal.
func TestAppServicesOnARealSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := swarmEngine(t, ctx)

	// The network: created once, then found.
	first, err := e.NetworkEnsure(ctx, "org-a", map[string]string{"skypanel.organization": "o1"}, false)
	if err != nil || !first.Created || first.NetworkID == "" {
		t.Fatalf("first ensure: %+v %v", first, err)
	}
	again, err := e.NetworkEnsure(ctx, "org-a", map[string]string{"skypanel.organization": "o1"}, false)
	if err != nil || again.Created || again.NetworkID != first.NetworkID {
		t.Fatalf("second ensure: %+v %v, want the same network uncreated", again, err)
	}
	enc, err := e.NetworkEnsure(ctx, "org-enc", nil, true)
	if err != nil || !enc.Created {
		t.Fatalf("encrypted network: %+v %v", enc, err)
	}
	eventually(t, 30*time.Second, "the encrypted network allocated as an encrypted attachable overlay", func() (bool, string) {
		n, err := e.cli.NetworkInspect(ctx, enc.NetworkID, network.InspectOptions{})
		_, encrypted := n.Options["encrypted"]
		return err == nil && encrypted && n.Attachable && n.Driver == "overlay", fmt.Sprintf("%+v %v", n, err)
	})

	// A spec without the managed label changes nothing.
	bad := appSpec("d0", 1)
	delete(bad.Labels, LabelManaged)
	if _, err := e.ServiceApply(ctx, bad); err == nil {
		t.Fatal("a spec without skypanel.managed=true was applied")
	}

	// The first deployment.
	res, err := e.ServiceApply(ctx, appSpec("d1", 2))
	if err != nil || !res.Changed || res.ServiceID == "" {
		t.Fatalf("apply d1: %+v %v", res, err)
	}
	eventually(t, 2*time.Minute, "two healthy tasks of d1", running(ctx, e, "d1", 2))
	svc, _, err := e.cli.ServiceInspectWithRaw(ctx, "app-1", swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.EndpointSpec == nil || svc.Spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || len(svc.Endpoint.Ports) > 0 || len(svc.Endpoint.VirtualIPs) > 0 || len(svc.Spec.TaskTemplate.Networks) != 1 ||
		svc.Spec.TaskTemplate.Networks[0].Target != first.NetworkID {
		t.Fatalf("service as created: endpoint %+v %+v, networks %+v", svc.Spec.EndpointSpec, svc.Endpoint, svc.Spec.TaskTemplate.Networks)
	}

	// The same command again (its acknowledgement was lost): no second effect.
	res, err = e.ServiceApply(ctx, appSpec("d1", 2))
	if err != nil || res.Changed || res.ServiceID != svc.ID {
		t.Fatalf("apply d1 again: %+v %v, want unchanged", res, err)
	}
	after, _, err := e.cli.ServiceInspectWithRaw(ctx, "app-1", swarm.ServiceInspectOptions{})
	if err != nil || after.Version.Index != svc.Version.Index {
		t.Fatalf("repeating d1 updated the service: version %d -> %d (%v)", svc.Version.Index, after.Version.Index, err)
	}

	t.Run("logs come from every replica with their slots", func(t *testing.T) { followLogs(t, ctx, e) })
	t.Run("logs without follow end", func(t *testing.T) {
		var lines int
		err := e.ServiceLogs(ctx, &agentv1.LogsFollow{StreamId: "x", ServiceName: "app-1", Tail: 2}, func(*agentv1.AgentLogLine) error {
			lines++
			return nil
		})
		if err != nil || lines == 0 || lines > 4 {
			t.Fatalf("tail 2 of two tasks: %d lines, %v", lines, err)
		}
	})
	t.Run("app containers report their resource use", func(t *testing.T) {
		cs, err := e.ManagedContainers(ctx)
		if err != nil || len(cs) != 2 {
			t.Fatalf("managed containers: %+v %v", cs, err)
		}
		slots := map[int32]bool{}
		for _, c := range cs {
			slots[c.Slot] = true
			if c.ServiceName != "app-1" || c.TaskID == "" {
				t.Fatalf("container %+v", c)
			}
			s, err := e.ContainerSample(ctx, c.ID)
			if err != nil || s.MemoryBytes <= 0 || s.CPUTotal == 0 || s.SystemCPU == 0 || s.OnlineCPUs == 0 {
				t.Fatalf("sample of %s: %+v %v", c.ID, s, err)
			}
		}
		if !slots[1] || !slots[2] {
			t.Fatalf("slots %v, want 1 and 2", slots)
		}
	})

	// A new deployment rolls out.
	res, err = e.ServiceApply(ctx, appSpec("d2", 2))
	if err != nil || !res.Changed {
		t.Fatalf("apply d2: %+v %v", res, err)
	}
	eventually(t, 2*time.Minute, "two healthy tasks of d2", running(ctx, e, "d2", 2))

	// A service of the same name SkyPanel does not manage is left alone.
	foreign := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "foreign"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: testImage}}}
	if _, err := e.cli.ServiceCreate(ctx, foreign, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := appSpec("d1", 1)
	other.ServiceName = "foreign"
	if _, err := e.ServiceApply(ctx, other); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("applying over an unmanaged service: %v", err)
	}
	if _, err := e.ServiceRemove(ctx, "foreign"); err == nil {
		t.Fatal("an unmanaged service was removed")
	}
	sts, err := e.ServiceStatuses(ctx)
	if err != nil || len(sts) != 1 {
		t.Fatalf("statuses list only managed services: %v %v", sts, err)
	}

	// Removal, twice.
	if rm, err := e.ServiceRemove(ctx, "app-1"); err != nil || !rm.Removed {
		t.Fatalf("remove: %+v %v", rm, err)
	}
	if rm, err := e.ServiceRemove(ctx, "app-1"); err != nil || rm.Removed {
		t.Fatalf("remove again: %+v %v", rm, err)
	}
}

// followLogs follows app-1's logs until lines came from both replicas.
func followLogs(t *testing.T, ctx context.Context, e *Engine) {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := map[int32]map[string]bool{} // slot -> streams
	tasks := map[string]int32{}
	errDone := errors.New("done")
	err := e.ServiceLogs(fctx, &agentv1.LogsFollow{StreamId: "s1", ServiceName: "app-1", Tail: 5, Follow: true},
		func(l *agentv1.AgentLogLine) error {
			mu.Lock()
			defer mu.Unlock()
			if l.GetTaskId() == "" || l.GetSwarmNodeId() == "" || l.GetAt() == nil || l.GetSlot() == 0 {
				return fmt.Errorf("line without its origin: %v", l)
			}
			if prev, ok := tasks[l.GetTaskId()]; ok && prev != l.GetSlot() {
				return fmt.Errorf("task %s had slot %d, now %d", l.GetTaskId(), prev, l.GetSlot())
			}
			tasks[l.GetTaskId()] = l.GetSlot()
			if seen[l.GetSlot()] == nil {
				seen[l.GetSlot()] = map[string]bool{}
			}
			seen[l.GetSlot()][l.GetStream()] = true
			if strings.HasSuffix(l.GetText(), "\n") {
				return fmt.Errorf("line %q keeps its newline", l.GetText())
			}
			if len(seen) == 2 && len(seen[1]) == 2 && len(seen[2]) == 2 {
				return errDone
			}
			return nil
		})
	if !errors.Is(err, errDone) {
		t.Fatalf("following logs: %v; seen %v", err, seen)
	}
}

// An image from a registry runs pinned to the digest its tag has when it is applied: the
// same command again reports the same digest, a new deployment after the tag moved gets the
// new one, and an image the registry cannot give (gone, or built here) runs by its tag.
func TestServiceApplyPinsARegistryImageToItsDigest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)))) // loopback: Docker speaks plain HTTP to it
	defer reg.Close()
	e, d := singleNodeSwarm(t, ctx, dockertest.Options{SharedNetwork: true})
	if _, err := e.NetworkEnsure(ctx, "org-a", nil, false); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(reg.URL, "http://") + "/team/app:v1"
	imageOf := func() string {
		svc, _, err := e.cli.ServiceInspectWithRaw(ctx, "app-1", swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc.Spec.TaskTemplate.ContainerSpec.Image
	}

	first := dockertest.PushAppImage(t, ref, "one")
	spec := appSpec("d1", 1)
	spec.Image = ref
	res, err := e.ServiceApply(ctx, spec)
	if err != nil || res.ImageDigest != first {
		t.Fatalf("apply d1: %+v %v; want digest %s", res, err, first)
	}
	if got := imageOf(); got != ref+"@"+first {
		t.Fatalf("service image %q, want it pinned to %s", got, first)
	}
	eventually(t, 2*time.Minute, "a healthy task of d1, pulled by digest", running(ctx, e, "d1", 1))
	again, err := e.ServiceApply(ctx, spec)
	if err != nil || again.Changed || again.ImageDigest != first {
		t.Fatalf("apply d1 again: %+v %v; want unchanged with digest %s", again, err, first)
	}

	second := dockertest.PushAppImage(t, ref, "two")
	if second == first {
		t.Fatal("the second image has the first's digest")
	}
	spec = appSpec("d2", 1)
	spec.Image = ref
	res, err = e.ServiceApply(ctx, spec)
	if err != nil || res.ImageDigest != second || imageOf() != ref+"@"+second {
		t.Fatalf("apply d2 after the tag moved: %+v %v, image %q; want digest %s", res, err, imageOf(), second)
	}
	eventually(t, 2*time.Minute, "a healthy task of d2", running(ctx, e, "d2", 1))

	// A rollback names its digest itself: nothing to resolve, the registry is not asked.
	spec = appSpec("d3", 1)
	spec.Image = ref + "@" + first
	if res, err = e.ServiceApply(ctx, spec); err != nil || res.ImageDigest != "" || imageOf() != ref+"@"+first {
		t.Fatalf("apply d3 by digest: %+v %v, image %q", res, err, imageOf())
	}

	// A registry that is gone: the tag runs as given, without waiting long.
	reg.Close()
	spec = appSpec("d4", 1)
	spec.Image = ref
	start := time.Now()
	if res, err = e.ServiceApply(ctx, spec); err != nil || res.ImageDigest != "" || imageOf() != ref {
		t.Fatalf("apply d4 with the registry gone: %+v %v, image %q", res, err, imageOf())
	}
	if waited := time.Since(start); waited > digestTimeout {
		t.Fatalf("applying with the registry gone took %s", waited)
	}

	// An image built on this engine (as the tests' images are) is not looked up.
	dockertest.AppImage(t, d, testImage)
	spec = appSpec("d5", 1)
	if res, err = e.ServiceApply(ctx, spec); err != nil || res.ImageDigest != "" || imageOf() != testImage {
		t.Fatalf("apply d5 with a local image: %+v %v, image %q", res, err, imageOf())
	}
}
