// Package workloads holds the agent's workload reports: the state of the apps' Swarm
// services and tasks (on managers) and the resource use of the app containers on this node
// (on every node), sent with ReportWorkloads when Docker's events show a change (debounced)
// and every heartbeat interval. It stays cheap on a node without apps: one container list
// per report, and no stats calls when no app container runs here.
package workloads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/agent/internal/docker"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

// Defaults.
const (
	DefaultInterval = 10 * time.Second
	DefaultDebounce = 300 * time.Millisecond
	// DefaultRefusedInterval spaces reports while the control plane refuses this node.
	DefaultRefusedInterval = time.Minute
	// eventsRetry spaces attempts to reopen Docker's event stream.
	eventsRetry = 5 * time.Second
	// sampleParallelism bounds the container stats read at once.
	sampleParallelism = 8
)

// Engine is the part of the Docker Engine workload reports read (docker.Engine is one).
type Engine interface {
	ServiceStatuses(ctx context.Context) ([]*agentv1.ServiceStatus, error)
	ManagedContainers(ctx context.Context) ([]docker.ManagedContainer, error)
	ContainerSample(ctx context.Context, id string) (docker.ContainerSample, error)
	WatchWorkloads(ctx context.Context, changed func()) error
}

// ClientSource returns the AgentService client to call now (link.Client is one).
type ClientSource interface {
	API() agentv1connect.AgentServiceClient
}

// Options configure a Reporter.
type Options struct {
	Client ClientSource
	Engine Engine
	// Interval returns the time between periodic reports: the heartbeat's interval, which
	// the control plane sets (report.Reporter.Interval). Nil means DefaultInterval.
	Interval func() time.Duration
	// Debounce gathers a burst of Docker events into one report (default 300 ms).
	Debounce time.Duration
	// RefusedInterval spaces reports while the control plane refuses this node (default
	// 1 min).
	RefusedInterval time.Duration
	// Logger receives the reporter's log; nil discards.
	Logger *slog.Logger
	// Metrics registers the reporter's metrics; nil registers none.
	Metrics prometheus.Registerer
}

// Reporter sends workload reports.
type Reporter struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// prev holds each app container's last sample, for CPU use between two reports when
	// the Engine gives no previous reading of its own.
	prev map[string]docker.ContainerSample
	// sentContainers is whether the last report sent from a worker listed containers, so
	// that the one after the last container went away still goes out.
	sentContainers bool
	// workerUntil skips asking for services (which a worker's Engine refuses, logging an
	// error each time) until then; a node that becomes a manager (swarm init or promotion) is
	// noticed after it.
	workerUntil time.Time

	mReports *prometheus.CounterVec
}

// workerRecheck is how long a node that is not a manager is taken for a worker.
const workerRecheck = 5 * time.Second

// New returns a Reporter.
func New(opts Options) (*Reporter, error) {
	if opts.Client == nil || opts.Engine == nil {
		return nil, errors.New("workloads: client and engine are required")
	}
	if opts.Interval == nil {
		opts.Interval = func() time.Duration { return DefaultInterval }
	}
	if opts.Debounce == 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.RefusedInterval == 0 {
		opts.RefusedInterval = DefaultRefusedInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reporter{
		opts: opts, log: logger, prev: map[string]docker.ContainerSample{},
		mReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_agent_workload_reports_total", Help: "Workload reports by result (ok, error, skipped)."}, []string{"result"}),
	}
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(r.mReports); err != nil {
			return nil, fmt.Errorf("workloads: register metrics: %w", err)
		}
	}
	return r, nil
}

// Run reports at once, then whenever Docker's events show a change (after Debounce) and
// every Interval, until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watch(ctx, signal)
	}()
	defer wg.Wait()

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	pending := false
	periodic := time.NewTimer(0)
	defer periodic.Stop()
	for {
		select {
		case <-ctx.Done():
			debounce.Stop()
			return nil
		case <-changed:
			if !pending {
				pending = true
				debounce.Reset(r.opts.Debounce)
			}
			continue
		case <-debounce.C:
			pending = false
		case <-periodic.C:
		}
		wait := r.opts.Interval()
		if err := r.ReportOnce(ctx); err != nil && ctx.Err() == nil {
			r.mReports.WithLabelValues("error").Inc()
			if refused(err) {
				wait = max(wait, r.opts.RefusedInterval)
				r.log.Error("the control plane refuses this node's workload reports", "error", err, "retry_in", wait.String())
			} else {
				r.log.Warn("workload report failed", "error", err)
			}
		}
		if !periodic.Stop() {
			select {
			case <-periodic.C:
			default:
			}
		}
		periodic.Reset(wait)
	}
}

// watch follows Docker's events, reopening the stream when it fails; a reopened stream
// may have missed events, so it counts as a change.
func (r *Reporter) watch(ctx context.Context, changed func()) {
	for {
		err := r.opts.Engine.WatchWorkloads(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("docker event stream lost; reopening", "error", err, "retry_in", eventsRetry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(eventsRetry):
		}
		changed()
	}
}

// ReportOnce builds a report and sends it, unless this node has nothing to say: a worker
// (no service list) without app containers, that said so already.
func (r *Reporter) ReportOnce(ctx context.Context) error {
	req, err := r.Build(ctx)
	if err != nil {
		return err
	}
	hasContainers := len(req.GetContainers()) > 0
	r.mu.Lock()
	skip := !req.GetComplete() && !hasContainers && !r.sentContainers
	r.mu.Unlock()
	if skip {
		r.mReports.WithLabelValues("skipped").Inc()
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := r.opts.Client.API().ReportWorkloads(cctx, connect.NewRequest(req)); err != nil {
		return fmt.Errorf("send workload report: %w", err)
	}
	r.mu.Lock()
	r.sentContainers = hasContainers
	r.mu.Unlock()
	r.mReports.WithLabelValues("ok").Inc()
	return nil
}

// Build reads the workloads: the swarm's app services and tasks when this node is a manager
// (then Complete is set), and the app containers' resource use on this node.
func (r *Reporter) Build(ctx context.Context) (*agentv1.ReportWorkloadsRequest, error) {
	req := &agentv1.ReportWorkloadsRequest{SampledAt: timestamppb.Now()}
	r.mu.Lock()
	worker := time.Now().Before(r.workerUntil)
	r.mu.Unlock()
	var services []*agentv1.ServiceStatus
	err := docker.ErrNotManager
	if !worker {
		services, err = r.opts.Engine.ServiceStatuses(ctx)
	}
	switch {
	case errors.Is(err, docker.ErrNotManager):
		if !worker {
			r.mu.Lock()
			r.workerUntil = time.Now().Add(workerRecheck)
			r.mu.Unlock()
		}
	case err != nil:
		return nil, fmt.Errorf("workload report: %w", err)
	default:
		req.Services, req.Complete = services, true
	}
	containers, err := r.opts.Engine.ManagedContainers(ctx)
	if err != nil {
		if req.Complete {
			// The services are worth sending without the stats.
			r.log.Warn("workload report: app containers unavailable", "error", err)
			return req, nil
		}
		return nil, fmt.Errorf("workload report: %w", err)
	}
	req.Containers = r.stats(ctx, containers)
	return req, nil
}

// stats samples each app container once.
func (r *Reporter) stats(ctx context.Context, containers []docker.ManagedContainer) []*agentv1.ContainerStats {
	if len(containers) == 0 {
		r.mu.Lock()
		clear(r.prev)
		r.mu.Unlock()
		return nil
	}
	// A one-shot read can wait for the Engine's next collection (up to a second): read a
	// few containers at once so that a report does not take seconds.
	samples := make([]docker.ContainerSample, len(containers))
	errs := make([]error, len(containers))
	var g errgroup.Group
	g.SetLimit(sampleParallelism)
	for i, c := range containers {
		g.Go(func() error {
			samples[i], errs[i] = r.opts.Engine.ContainerSample(ctx, c.ID)
			return nil
		})
	}
	_ = g.Wait()

	out := make([]*agentv1.ContainerStats, 0, len(containers))
	next := make(map[string]docker.ContainerSample, len(containers))
	r.mu.Lock()
	prev := r.prev
	r.mu.Unlock()
	for i, c := range containers {
		s := samples[i]
		if errs[i] != nil {
			// Gone between the list and the read, most likely; the next report has it right.
			r.log.Debug("workload report: container stats unavailable", "container_id", c.ID, "error", errs[i])
			continue
		}
		next[c.ID] = s
		out = append(out, &agentv1.ContainerStats{
			ServiceName: c.ServiceName,
			TaskId:      c.TaskID,
			Slot:        c.Slot,
			CpuPercent:  cpuPercent(s, prev[c.ID]),
			MemoryBytes: s.MemoryBytes,
			NetRxBytes:  s.NetRxBytes,
			NetTxBytes:  s.NetTxBytes,
		})
	}
	r.mu.Lock()
	r.prev = next
	r.mu.Unlock()
	return out
}

// cpuPercent uses the Engine's previous reading when the sample has one, else this agent's
// previous sample of the container (CPU use since the last report), else says 0: the
// container's first report has no earlier reading to compare with.
func cpuPercent(s, prev docker.ContainerSample) float64 {
	if s.PreSystemCPU > 0 {
		return docker.CPUPercent(s.CPUTotal, s.PreCPUTotal, s.SystemCPU, s.PreSystemCPU, s.OnlineCPUs)
	}
	if prev.SystemCPU > 0 {
		return docker.CPUPercent(s.CPUTotal, prev.CPUTotal, s.SystemCPU, prev.SystemCPU, s.OnlineCPUs)
	}
	return 0
}

func refused(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return true
	}
	return false
}
