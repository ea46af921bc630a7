// Package nodes runs the control plane's side of node agents: their live sessions, the
// per-node command outbox, heartbeats and health, metrics, and the cluster lifecycle that
// agents carry out (swarm init and join, gossip configuration, drain, removal).
//
// Everything durable is in Postgres, so any replica may hold a node's session: a command is a
// row of the node's outbox, announced with NOTIFY on commit and also found by a periodic poll;
// a session resumes after the sequence the agent last acknowledged. What is kept in memory
// (last-seen times, the latest reports, alert cooldowns) is written back in batches or can be
// rebuilt from the database.
package nodes

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
)

// Defaults of Options.
const (
	DefaultReportInterval    = 10 * time.Second
	DefaultNodeTTL           = 30 * time.Second
	DefaultNodeGrace         = 15 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultPollInterval      = 5 * time.Second
	DefaultHealthInterval    = 5 * time.Second
	DefaultFlushInterval     = 5 * time.Second
	DefaultMetricsInterval   = 5 * time.Minute
	DefaultAlertCooldown     = 15 * time.Minute
)

// Metric retention: raw samples are rolled into 5-minute buckets once older than RollupAfter,
// deleted after RawRetention; the buckets are deleted after RollupRetention.
const (
	RollupAfter     = time.Hour
	RawRetention    = 24 * time.Hour
	RollupRetention = 30 * 24 * time.Hour
)

// Alert thresholds: a report over these fires node.cpu_high or node.memory_high.
const (
	CPUHighPercent    = 90
	MemoryHighPercent = 90
)

// minHealthInterval bounds the health interval derived from short TTLs.
const minHealthInterval = 100 * time.Millisecond

// Options configure a Manager. Zero durations take the defaults above.
type Options struct {
	Store   *store.Store
	Keyring *secrets.Keyring
	Logger  *slog.Logger

	// ReportInterval is how often agents should report (sent in every ReportResponse).
	// Default 10s; flag --report-interval.
	ReportInterval time.Duration
	// NodeTTL plus NodeGrace is how long a node may go without a report before it is down (or
	// unreachable, while a peer still sees it). Defaults 30s and 15s; flags --node-ttl and
	// --node-grace.
	NodeTTL   time.Duration
	NodeGrace time.Duration
	// KeepaliveInterval is how long a session may be idle before it sends a keepalive.
	// Default 15s (agents drop a stream silent for 45s).
	KeepaliveInterval time.Duration
	// PollInterval is how often the manager looks for commands its sessions were not notified
	// of (one query for all of them), and rechecks the node certificates it remembers as
	// good. Default 5s.
	PollInterval time.Duration
	// HealthInterval is how often node health is evaluated. Default 5s, or a fifth of
	// NodeTTL plus NodeGrace when that is shorter (at least 100ms), so that a silent node is
	// marked down close to NodeTTL plus NodeGrace, not up to a whole interval later.
	HealthInterval time.Duration
	// FlushInterval is how often the latest reports and metric samples are written. Default 5s.
	FlushInterval time.Duration
	// MetricsInterval is how often metrics are rolled up and old ones deleted. Default 5m.
	MetricsInterval time.Duration
	// AlertCooldown is the least time between two alerts of one kind about one node.
	// Default 15m.
	AlertCooldown time.Duration
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
}

// Errors a session or an agent call can end with; the API maps them to Connect codes.
var (
	// ErrReplaced ends a session because the node opened a newer one.
	ErrReplaced = errors.New("session replaced by a newer one of the same node")
	// ErrClosed ends a session that Close ended (node removed or its certificate revoked).
	ErrClosed = errors.New("session closed by the control plane")
	// ErrStopped ends a session because the control plane is shutting down.
	ErrStopped = errors.New("control plane shutting down")
	// ErrNodeRemoved refuses a node that was removed.
	ErrNodeRemoved = errors.New("node removed")
	// ErrUnknownCommand refuses an Ack of a sequence never queued for the node.
	ErrUnknownCommand = errors.New("no such command")
	// ErrLastManager refuses to remove the last manager of a swarm that still has other nodes.
	ErrLastManager = errors.New("the node is the last manager of its swarm; remove the other nodes first")
	// ErrNotJoined refuses a swarm change to a node that is not in the swarm yet.
	ErrNotJoined = errors.New("the node has not joined the swarm yet")
	// ErrNoManager refuses a swarm change when the cluster has no manager to carry it out.
	ErrNoManager = errors.New("the cluster has no manager to carry this out")
	// ErrRemoving refuses a change to a node being removed.
	ErrRemoving = errors.New("the node is being removed")
)

// Manager holds every agent session of this control-plane replica and runs the background
// work of nodes: health, report writes, metric rollups.
type Manager struct {
	opts Options
	// replica tells this manager's notifications from other replicas'.
	replica uuid.UUID
	store   *store.Store
	logger  *slog.Logger
	now     func() time.Time

	// ready closes once the listener first listens.
	ready     chan struct{}
	readyOnce sync.Once
	// healthNudge asks the health loop for an early pass (a silent node reported again).
	healthNudge chan struct{}
	// healthPass serialises health passes: two overlapping passes of one replica could
	// otherwise write states computed from different moments (down, ready, down again).
	healthPass sync.Mutex
	// liveNodes is the health pass's buffer of node rows, reused by each pass (guarded by
	// healthPass): thousands of rows every few seconds.
	liveNodes []store.Node

	mu       sync.Mutex
	sessions map[uuid.UUID]*session
	watchers map[uuid.UUID]map[*watcher]struct{} // by cluster
	stopped  bool
	// live is what this replica knows of nodes from their reports, by node.
	live map[uuid.UUID]*liveNode
	// pending are the latest reports not written yet, by node; samples the metrics.
	pending map[uuid.UUID]store.NodeReportWrite
	samples []store.NodeMetricSample
	// flushMu serializes Flush; it guards the buffers a flush hands back for the next one
	// to fill (at thousands of nodes, a new map and slice every flush is garbage enough to
	// bring the next collection forward).
	flushMu      sync.Mutex
	spare        map[uuid.UUID]store.NodeReportWrite
	spareSamples []store.NodeMetricSample
	writes       []store.NodeReportWrite
	// alerted remembers, by node and alert, when it last fired (or was found to have fired).
	alerted map[alertKey]time.Time
	// standing remembers node certificates found good (see standingCache).
	standing *standingCache
	// announced are new sessions not yet announced to other replicas.
	announced *announcements
	// states is each node's state as the last health pass left it.
	states map[uuid.UUID]string
	// rolledUntil is where the last metric rollup ended (zero before the first).
	rolledUntil time.Time
	// acks wakes waiters for nodes' answers (AckSignal).
	acks ackSignals
}

// liveNode is what the health pass needs of a node's latest report, and when it came.
type liveNode struct {
	clusterID uuid.UUID
	seen      time.Time
	// peers are the lists of the node's reports (nil: not known here), peersDigest the
	// digest the agent gave them (ReportRequest.peers_digest).
	peers       *store.NodePeers
	peersDigest uint64
}

type alertKey struct {
	node  uuid.UUID
	event string
}

// maxPendingSamples bounds the metric samples kept while the database is unreachable.
const maxPendingSamples = 50_000

// New returns a Manager; missing durations take their defaults. Store, Keyring and Logger are
// required.
func New(opts Options) *Manager {
	if opts.Store == nil || opts.Keyring == nil || opts.Logger == nil {
		panic("nodes.New: Store, Keyring and Logger are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReportInterval, DefaultReportInterval)
	def(&opts.NodeTTL, DefaultNodeTTL)
	if opts.NodeGrace < 0 {
		opts.NodeGrace = 0
	} else if opts.NodeGrace == 0 {
		opts.NodeGrace = DefaultNodeGrace
	}
	def(&opts.KeepaliveInterval, DefaultKeepaliveInterval)
	def(&opts.PollInterval, DefaultPollInterval)
	def(&opts.HealthInterval, min(DefaultHealthInterval, max(minHealthInterval, (opts.NodeTTL+opts.NodeGrace)/5)))
	def(&opts.FlushInterval, DefaultFlushInterval)
	def(&opts.MetricsInterval, DefaultMetricsInterval)
	def(&opts.AlertCooldown, DefaultAlertCooldown)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{
		opts:        opts,
		replica:     uuid.New(),
		store:       opts.Store,
		logger:      opts.Logger,
		now:         opts.Now,
		ready:       make(chan struct{}),
		healthNudge: make(chan struct{}, 1),
		sessions:    map[uuid.UUID]*session{},
		watchers:    map[uuid.UUID]map[*watcher]struct{}{},
		live:        map[uuid.UUID]*liveNode{},
		pending:     map[uuid.UUID]store.NodeReportWrite{},
		alerted:     map[alertKey]time.Time{},
		states:      map[uuid.UUID]string{},
		standing:    newStandingCache(),
		announced:   newAnnouncements(),
	}
}

// Ready is closed once Run listens for notifications: from then on a committed command
// reaches the node's session at once, not only at the next poll.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// ReportInterval is how often agents are asked to report.
func (m *Manager) ReportInterval() time.Duration { return m.opts.ReportInterval }

// Run runs background work until ctx is done: the listener that wakes sessions and
// watchers, health checks, report writes and metric rollups. When it returns, every session
// has ended (with ErrStopped) and the pending reports are written.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	loops := []func(context.Context){m.listenLoop, m.announceLoop, m.pollLoop, m.healthLoop, m.flushLoop, m.metricsLoop}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	<-ctx.Done()
	m.stop()
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.Flush(flushCtx); err != nil {
		m.logger.Warn("write node reports at shutdown", "err", err)
	}
}

// every runs fn every d until ctx is done, and early whenever nudge receives.
func every(ctx context.Context, d time.Duration, nudge <-chan struct{}, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
		fn(ctx)
	}
}

func (m *Manager) flushLoop(ctx context.Context) {
	every(ctx, m.opts.FlushInterval, nil, func(ctx context.Context) {
		if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("write node reports", "err", err)
		}
	})
}

func (m *Manager) metricsLoop(ctx context.Context) {
	run := func(ctx context.Context) {
		if err := m.MaintainMetrics(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("maintain node metrics", "err", err)
		}
	}
	run(ctx)
	every(ctx, m.opts.MetricsInterval, nil, run)
}

func (m *Manager) healthLoop(ctx context.Context) {
	every(ctx, m.opts.HealthInterval, m.healthNudge, func(ctx context.Context) {
		if err := m.CheckHealth(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("check node health", "err", err)
		}
	})
}
