// Package report holds the agent's heartbeat: every interval it samples the host (CPU over
// the interval, memory, disk, network counters, load), asks the Docker Engine about itself
// and the swarm, adds what gossip says about the peers, and sends it all as one Report. The
// control plane's answer sets the next interval.
package report

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/host"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

// Interval bounds: the control plane's answer is clamped to them.
const (
	DefaultInterval = 10 * time.Second
	MinInterval     = time.Second
	MaxInterval     = 10 * time.Minute
)

// DefaultRefusedInterval is Options.RefusedInterval's default.
const DefaultRefusedInterval = time.Minute

// Sampler samples the host.
type Sampler interface {
	Sample(ctx context.Context, dataRoot string) (host.Metrics, error)
}

// Engine is the part of the Docker Engine reports read.
type Engine interface {
	Info(ctx context.Context) (docker.Info, error)
	DiskUsage(ctx context.Context) (docker.DiskUsage, error)
}

// Peers tells which cluster peers gossip can and cannot reach.
type Peers interface {
	Peers() (reachable, unreachable []string)
}

// ClientSource returns the AgentService client to call now (link.Client is one).
type ClientSource interface {
	API() agentv1connect.AgentServiceClient
}

// Options configure a Reporter.
type Options struct {
	Client  ClientSource
	Sampler Sampler
	Engine  Engine
	// Peers may be nil (no gossip yet).
	Peers Peers
	// Interval is the first interval (default 10 s); the control plane's answers replace it.
	Interval time.Duration
	// OverlayEncryption is whether the kernel can carry encrypted overlays (detected once).
	OverlayEncryption bool
	// DiskUsageEvery is how often to ask the Engine for its disk use, which can be slow
	// (default 1 min).
	DiskUsageEvery time.Duration
	// RefusedInterval spaces reports while the control plane refuses this node (its
	// certificate revoked, the node removed): retrying at the report interval would only
	// add load and log lines (default 1 min).
	RefusedInterval time.Duration
	// StreamKeepalive, if set, is called when the control plane says a report's answer came
	// over the command stream's connection and counts as its keepalive
	// (session.Session.Keepalive).
	StreamKeepalive func()
	Logger          *slog.Logger
	// Metrics registers the reporter's metrics; nil registers none.
	Metrics prometheus.Registerer
}

// Reporter sends reports.
type Reporter struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	interval time.Duration
	du       docker.DiskUsage
	duAt     time.Time
	// heldPeers is the digest of this node's peer lists the control plane said it holds in
	// its last answer (0: none, or the last report failed).
	heldPeers uint64

	mReports *prometheus.CounterVec
}

// New returns a Reporter.
func New(opts Options) (*Reporter, error) {
	if opts.Client == nil || opts.Sampler == nil || opts.Engine == nil {
		return nil, errors.New("report: client, sampler and engine are required")
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.DiskUsageEvery == 0 {
		opts.DiskUsageEvery = time.Minute
	}
	if opts.RefusedInterval == 0 {
		opts.RefusedInterval = DefaultRefusedInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reporter{
		opts: opts, log: logger, interval: opts.Interval,
		mReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_agent_reports_total", Help: "Reports sent by result (ok, error)."}, []string{"result"}),
	}
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(r.mReports); err != nil {
			return nil, fmt.Errorf("report: register metrics: %w", err)
		}
	}
	return r, nil
}

// Interval returns the current report interval.
func (r *Reporter) Interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.interval
}

// Run reports every interval until ctx ends. The first report goes out at once. While the
// control plane refuses the node, it reports every RefusedInterval instead.
func (r *Reporter) Run(ctx context.Context) error {
	for {
		wait := r.Interval()
		if err := r.ReportOnce(ctx); err != nil && ctx.Err() == nil {
			r.mReports.WithLabelValues("error").Inc()
			if Refused(err) {
				wait = max(wait, r.opts.RefusedInterval)
				r.log.Error("the control plane refuses this node's reports: its certificate was revoked or the node was removed",
					"error", err, "retry_in", wait.String())
			} else {
				r.log.Warn("report failed", "error", err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// ReportOnce builds and sends one report. It leaves the peer lists out when the control
// plane's last answer said it holds them as they are.
func (r *Reporter) ReportOnce(ctx context.Context) error {
	req := r.Build(ctx)
	r.mu.Lock()
	if req.PeersDigest != 0 && req.PeersDigest == r.heldPeers {
		req.ReachablePeers, req.UnreachablePeers = nil, nil
	}
	r.heldPeers = 0 // until the answer says otherwise
	r.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := r.opts.Client.API().Report(cctx, connect.NewRequest(req))
	if err != nil {
		return fmt.Errorf("send report: %w", err)
	}
	r.mReports.WithLabelValues("ok").Inc()
	r.mu.Lock()
	r.heldPeers = resp.Msg.GetPeersDigest()
	r.mu.Unlock()
	if resp.Msg.GetStreamKeepalive() && r.opts.StreamKeepalive != nil {
		r.opts.StreamKeepalive()
	}
	if s := resp.Msg.GetIntervalSeconds(); s > 0 {
		d := min(max(time.Duration(s)*time.Second, MinInterval), MaxInterval)
		r.mu.Lock()
		if d != r.interval {
			r.log.Info("report interval set by the control plane", "interval", d.String())
		}
		r.interval = d
		r.mu.Unlock()
	}
	return nil
}

// Refused reports whether err is the control plane refusing this node itself, as opposed to
// a failure worth retrying soon.
func Refused(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return true
	}
	return false
}

// Build samples everything a report holds. A part that cannot be read is left out and
// logged, so a stopped Docker Engine still leaves host metrics flowing.
func (r *Reporter) Build(ctx context.Context) *agentv1.ReportRequest {
	req := &agentv1.ReportRequest{SampledAt: timestamppb.Now()}
	info, err := r.opts.Engine.Info(ctx)
	if err != nil {
		r.log.Warn("report: docker state unavailable", "error", err)
	} else {
		req.Docker = r.dockerState(ctx, info)
	}
	m, err := r.opts.Sampler.Sample(ctx, info.DataRoot)
	if err != nil {
		r.log.Warn("report: host metrics unavailable", "error", err)
	} else {
		req.Host = &agentv1.HostMetrics{
			CpuPercent: m.CPUPercent, MemoryUsedBytes: m.MemoryUsedBytes, MemoryTotalBytes: m.MemoryTotalBytes,
			DiskUsedBytes: m.DiskUsedBytes, DiskTotalBytes: m.DiskTotalBytes,
			NetRxBytes: m.NetRxBytes, NetTxBytes: m.NetTxBytes,
			Load1: m.Load1, Load5: m.Load5, Load15: m.Load15,
		}
	}
	if r.opts.Peers != nil {
		req.ReachablePeers, req.UnreachablePeers = r.opts.Peers.Peers()
		req.PeersDigest = peersDigest(req.ReachablePeers, req.UnreachablePeers)
	}
	return req
}

// peersDigest identifies a report's two peer lists (64-bit FNV-1a of both, in order); it is
// 0 only when both are empty.
func peersDigest(reachable, unreachable []string) uint64 {
	if len(reachable) == 0 && len(unreachable) == 0 {
		return 0
	}
	h := fnv.New64a()
	for _, list := range [][]string{reachable, unreachable} {
		for _, p := range list {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	if d := h.Sum64(); d != 0 {
		return d
	}
	return 1
}

func (r *Reporter) dockerState(ctx context.Context, info docker.Info) *agentv1.DockerState {
	st := &agentv1.DockerState{
		EngineVersion:     info.EngineVersion,
		SwarmNodeId:       info.SwarmNodeID,
		SwarmState:        info.SwarmState,
		Role:              Role(info),
		Availability:      info.Availability,
		ContainersRunning: int32(info.ContainersRunning),
		ContainersTotal:   int32(info.ContainersTotal),
		TasksRunning:      int32(info.TasksRunning),
		OverlayEncryption: r.opts.OverlayEncryption,
	}
	r.mu.Lock()
	stale := r.duAt.IsZero() || time.Since(r.duAt) >= r.opts.DiskUsageEvery
	r.mu.Unlock()
	if stale {
		du, err := r.opts.Engine.DiskUsage(ctx)
		if err != nil {
			r.log.Warn("report: docker disk usage unavailable", "error", err)
		} else {
			r.mu.Lock()
			r.du, r.duAt = du, time.Now()
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	st.ImagesBytes, st.VolumesBytes = r.du.ImagesBytes, r.du.VolumesBytes
	r.mu.Unlock()
	return st
}

// Role is the node's swarm role as the report states it.
func Role(info docker.Info) agentv1.NodeRole {
	switch {
	case info.SwarmState != "active":
		return agentv1.NodeRole_NODE_ROLE_UNSPECIFIED
	case info.Manager:
		return agentv1.NodeRole_NODE_ROLE_MANAGER
	default:
		return agentv1.NodeRole_NODE_ROLE_WORKER
	}
}
