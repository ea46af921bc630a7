package workloads

import (
	"context"
	"testing"
	"time"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/docker/dockertest"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// TestReportsFollowARealSwarm runs the reporter against a private single-node swarm: the
// app's tasks show up running with their containers' stats, and removing the service
// brings a report without it through Docker's events alone (the interval is an hour).
func TestReportsFollowARealSwarm(t *testing.T) {
	d := dockertest.Start(t, dockertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	eng, err := docker.New(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.SwarmInit(ctx, "127.0.0.1", "127.0.0.1:2377"); err != nil {
		t.Fatal(err)
	}
	dockertest.AppImage(t, d, "skypanel-test/app:1")
	if _, err := eng.NetworkEnsure(ctx, "org-a", nil, false); err != nil {
		t.Fatal(err)
	}

	cp := controlplanetest.New(t, controlplanetest.Options{})
	r := newReporter(t, cp, eng, time.Hour)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	cp.Wait("the first report: no services yet", 30*time.Second, func() bool {
		w := cp.Workloads()
		return len(w) > 0 && w[0].GetComplete() && len(w[0].GetServices()) == 0
	})

	if _, err := eng.ServiceApply(ctx, &agentv1.ServiceApply{
		ServiceName: "app-1", DeploymentId: "d1", Image: "skypanel-test/app:1", Replicas: 2,
		Command: []string{"/app", "serve", ":8080"}, Network: "org-a", MemoryBytes: 64 << 20, CpuMillis: 250,
		Labels: map[string]string{docker.LabelManaged: "true"},
	}); err != nil {
		t.Fatal(err)
	}
	var last *agentv1.ReportWorkloadsRequest
	cp.Wait("a report with two running tasks of d1 and their containers' stats", 2*time.Minute, func() bool {
		w := cp.Workloads()
		last = w[len(w)-1]
		if len(last.GetServices()) != 1 || len(last.GetContainers()) != 2 {
			return false
		}
		s := last.GetServices()[0]
		runningSlots := map[int32]bool{}
		for _, ts := range s.GetTasks() {
			if ts.GetState() == "running" && ts.GetDeploymentId() == "d1" && ts.GetContainerId() != "" &&
				ts.GetSwarmNodeId() != "" && ts.GetUpdatedAt() != nil {
				runningSlots[ts.GetSlot()] = true
			}
		}
		return s.GetServiceName() == "app-1" && s.GetDeploymentId() == "d1" && s.GetDesiredReplicas() == 2 &&
			runningSlots[1] && runningSlots[2]
	})
	for _, c := range last.GetContainers() {
		if c.GetServiceName() != "app-1" || c.GetTaskId() == "" || c.GetSlot() == 0 || c.GetMemoryBytes() <= 0 {
			t.Fatalf("container stats %v", c)
		}
	}
	// Events came (task containers starting, health), so reports kept coming; by now one
	// should have CPU use measured between two samples.
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	cp.Wait("CPU use measured", 30*time.Second, func() bool {
		w := cp.Workloads()
		for _, c := range w[len(w)-1].GetContainers() {
			if c.GetCpuPercent() > 0 {
				return true
			}
		}
		_ = r.ReportOnce(ctx)
		return false
	})

	if _, err := eng.ServiceRemove(ctx, "app-1"); err != nil {
		t.Fatal(err)
	}
	cp.Wait("a report without the service, brought by events", time.Minute, func() bool {
		w := cp.Workloads()
		l := w[len(w)-1]
		return l.GetComplete() && len(l.GetServices()) == 0
	})
}
