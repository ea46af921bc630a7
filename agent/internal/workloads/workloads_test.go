package workloads

import (
	"context"
	"sync"
	"testing"
	"time"

	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/link"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// fakeEngine plays a node's Docker Engine.
type fakeEngine struct {
	mu         sync.Mutex
	manager    bool
	services   []*agentv1.ServiceStatus
	containers []docker.ManagedContainer
	samples    map[string]docker.ContainerSample
	sampled    int
	events     chan struct{}
}

func (f *fakeEngine) ServiceStatuses(context.Context) ([]*agentv1.ServiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.manager {
		return nil, docker.ErrNotManager
	}
	return f.services, nil
}

func (f *fakeEngine) ManagedContainers(context.Context) ([]docker.ManagedContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containers, nil
}

func (f *fakeEngine) ContainerSample(_ context.Context, id string) (docker.ContainerSample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sampled++
	return f.samples[id], nil
}

func (f *fakeEngine) WatchWorkloads(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.events:
			changed()
		}
	}
}

func (f *fakeEngine) set(fn func(f *fakeEngine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func newReporter(t *testing.T, cp *controlplanetest.Server, eng Engine, interval time.Duration) *Reporter {
	t.Helper()
	id := cp.NewIdentity(t, "node-1", time.Hour)
	client := link.New(cp.URL, id.TLSConfig())
	t.Cleanup(client.Close)
	r, err := New(Options{Client: client, Engine: eng, Interval: func() time.Duration { return interval }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAManagerReportsEveryAppServiceAsACompleteList(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	eng := &fakeEngine{manager: true, services: []*agentv1.ServiceStatus{{ServiceName: "app-1", DeploymentId: "d1", DesiredReplicas: 2}}}
	r := newReporter(t, cp, eng, time.Hour)
	ctx := context.Background()
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eng.set(func(f *fakeEngine) { f.services = nil })
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := cp.Workloads()
	if len(got) != 2 || !got[0].GetComplete() || got[0].GetServices()[0].GetServiceName() != "app-1" ||
		!got[1].GetComplete() || len(got[1].GetServices()) != 0 {
		t.Fatalf("reports = %v; want app-1, then an empty complete list (the service is gone)", got)
	}
	if eng.sampled != 0 {
		t.Fatalf("read stats %d times on a node without app containers", eng.sampled)
	}
}

func TestAWorkerReportsOnlyWhenItHasAppContainersOrJustLostThem(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	eng := &fakeEngine{samples: map[string]docker.ContainerSample{}}
	r := newReporter(t, cp, eng, time.Hour)
	ctx := context.Background()
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(cp.Workloads()); n != 0 {
		t.Fatalf("a worker without app containers sent %d reports", n)
	}

	// Two samples a report apart: 0.5 s of CPU over 2 s of host time on 2 CPUs is 50 %.
	eng.set(func(f *fakeEngine) {
		f.containers = []docker.ManagedContainer{{ID: "c1", ServiceName: "app-1", TaskID: "t1", Slot: 2}}
		f.samples["c1"] = docker.ContainerSample{CPUTotal: 1e9, SystemCPU: 10e9, OnlineCPUs: 2, MemoryBytes: 5 << 20, NetRxBytes: 10, NetTxBytes: 20}
	})
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	eng.set(func(f *fakeEngine) {
		f.samples["c1"] = docker.ContainerSample{CPUTotal: 1.5e9, SystemCPU: 12e9, OnlineCPUs: 2, MemoryBytes: 6 << 20, NetRxBytes: 30, NetTxBytes: 40}
	})
	if err := r.ReportOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := cp.Workloads()
	if len(got) != 2 || got[0].GetComplete() || len(got[0].GetServices()) != 0 {
		t.Fatalf("reports = %v", got)
	}
	first, second := got[0].GetContainers()[0], got[1].GetContainers()[0]
	if first.GetCpuPercent() != 0 || first.GetServiceName() != "app-1" || first.GetTaskId() != "t1" || first.GetSlot() != 2 ||
		first.GetMemoryBytes() != 5<<20 || first.GetNetRxBytes() != 10 || first.GetNetTxBytes() != 20 {
		t.Fatalf("first sample %v", first)
	}
	if second.GetCpuPercent() != 50 || second.GetMemoryBytes() != 6<<20 {
		t.Fatalf("second sample %v, want 50 %% CPU", second)
	}

	// The containers go: one report says so, then the worker is quiet again.
	eng.set(func(f *fakeEngine) { f.containers = nil })
	for range 2 {
		if err := r.ReportOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := cp.Workloads(); len(got) != 3 || len(got[2].GetContainers()) != 0 {
		t.Fatalf("after the containers went: %d reports, want 3 (the last one empty)", len(got))
	}
}

func TestABurstOfEventsBringsOneReport(t *testing.T) {
	cp := controlplanetest.New(t, controlplanetest.Options{})
	eng := &fakeEngine{manager: true, events: make(chan struct{})}
	r := newReporter(t, cp, eng, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	cp.Wait("the first report, at once", 5*time.Second, func() bool { return len(cp.Workloads()) == 1 })
	for range 10 {
		eng.events <- struct{}{}
	}
	cp.Wait("a report after the burst", 5*time.Second, func() bool { return len(cp.Workloads()) >= 2 })
	settle := time.Now().Add(time.Second)
	cp.Wait("a second more", 5*time.Second, func() bool { return time.Now().After(settle) })
	if n := len(cp.Workloads()); n != 2 {
		t.Fatalf("%d reports after a burst of ten events, want 1", n-1)
	}
}
