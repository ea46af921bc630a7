package docker

import (
	"context"
	"testing"
	"time"

	"skypanel/agent/internal/docker/dockertest"
)

// TestSwarmLifecycleOnARealEngine walks the calls the control plane drives on a first
// manager: init, init again (no second swarm), label the node, drain it, leave.
func TestSwarmLifecycleOnARealEngine(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := New(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	info, err := e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.EngineVersion == "" || info.SwarmState != "inactive" {
		t.Fatalf("before init: %+v", info)
	}

	first, err := e.SwarmInit(ctx, "127.0.0.1", "127.0.0.1:2377")
	if err != nil {
		t.Fatal(err)
	}
	if first.SwarmID == "" || first.SwarmNodeID == "" || first.ManagerJoinToken == "" || first.WorkerJoinToken == "" {
		t.Fatalf("init returned %+v", first)
	}

	info, err = e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SwarmState != "active" || !info.Manager || info.SwarmNodeID != first.SwarmNodeID || info.Availability != "active" {
		t.Fatalf("after init: %+v", info)
	}

	again, err := e.SwarmInit(ctx, "127.0.0.1", "127.0.0.1:2377")
	if err != nil {
		t.Fatalf("second init: %v", err)
	}
	if again != first {
		t.Fatalf("second init returned %+v, want the same swarm %+v", again, first)
	}

	if _, err := e.SwarmJoin(ctx, []string{"127.0.0.1:2377"}, first.WorkerJoinToken, "127.0.0.1", ""); err != nil {
		t.Fatalf("join while already in the swarm: %v", err)
	}

	if err := e.NodeUpdate(ctx, first.SwarmNodeID, "", map[string]string{"skypanel.edge": "true", "zone": "a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.NodeUpdate(ctx, first.SwarmNodeID, "drain", map[string]string{"zone": "b"}); err != nil {
		t.Fatal(err)
	}
	if err := e.NodeUpdate(ctx, first.SwarmNodeID, "drain", map[string]string{"zone": "b"}); err != nil {
		t.Fatalf("repeating an update: %v", err)
	}
	n, _, err := e.cli.NodeInspectWithRaw(ctx, first.SwarmNodeID)
	if err != nil {
		t.Fatal(err)
	}
	if _, kept := n.Spec.Labels["skypanel.edge"]; kept || n.Spec.Labels["zone"] != "b" || n.Spec.Availability != "drain" {
		t.Fatalf("node spec after updates (labels are replaced, not merged): %+v", n.Spec)
	}
	if err := e.NodeUpdate(ctx, first.SwarmNodeID, "sleep", nil); err == nil {
		t.Fatal("a bad availability was accepted")
	}

	if _, err := e.DiskUsage(ctx); err != nil {
		t.Fatal(err)
	}

	if err := e.NodeRemove(ctx, "doesnotexist0000000000000", false); err != nil {
		t.Fatalf("removing a node that is not there: %v", err)
	}

	if err := e.SwarmLeave(ctx, true); err != nil {
		t.Fatal(err)
	}
	info, err = e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SwarmState != "inactive" {
		t.Fatalf("after leave: %+v", info)
	}
	if err := e.SwarmLeave(ctx, false); err != nil {
		t.Fatalf("leaving twice: %v", err)
	}
}
