// Package gossip holds the agent's membership gossip with the other agents of its cluster
// (hashicorp/memberlist on port 7947, since Swarm owns 7946). Its only product is an
// observation for the control plane: which peers this node can reach and which it cannot,
// so that a node cut off from the control plane alone can be told from a dead one.
//
// Each cluster has its own encryption key and label, so clusters that can reach each other
// never merge. Memberlist only exposes joins and deaths race-free (through its event
// delegate), so a peer that is merely suspected still counts as reachable until memberlist
// declares it dead, which takes a few seconds on a LAN.
package gossip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"skypanel/agent/internal/identity"
)

// DefaultPort is the agents' gossip port; Swarm's own gossip uses 7946.
const DefaultPort = 7947

// Options configure a Gossip.
type Options struct {
	// NodeName is this node's id; peers report it by this name.
	NodeName string
	// AdvertiseAddr is the address peers reach this node at (an IP).
	AdvertiseAddr string
	// BindAddr is the address to listen on (default 0.0.0.0).
	BindAddr string
	// Port overrides the port from the cluster's configuration when non-zero.
	Port int
	// Grace is how long a configured peer may stay unseen before it counts as unreachable
	// (default 30 s).
	Grace time.Duration
	// RejoinInterval is how often Run retries configured peers that are not alive
	// (default 15 s).
	RejoinInterval time.Duration
	// Local uses memberlist's loopback timings (fast failure detection) instead of LAN ones;
	// for tests.
	Local bool
	// StateFile, if set, keeps the last applied configuration (mode 0600: it holds the
	// key), so a restarted agent gossips again before the control plane sends anything:
	// the control plane sends a configuration only when the peers change.
	StateFile string
	// Logger receives memberlist's log lines at their levels; nil discards.
	Logger *slog.Logger
}

// Config is the cluster's gossip configuration, as the control plane sends it.
type Config struct {
	// Key is the memberlist encryption key (16, 24 or 32 bytes).
	Key []byte `json:"key"`
	// Label separates clusters.
	Label string `json:"label"`
	// Peers are host:port addresses of the cluster's other agents.
	Peers []string `json:"peers"`
	// Port is the gossip port (default DefaultPort).
	Port int `json:"port"`
}

type member struct {
	addr  string // ip:port
	alive bool
}

// table records what one memberlist instance said about its members. It has its own lock
// because memberlist calls the event delegate synchronously, also from inside Create.
type table struct {
	mu      sync.Mutex
	members map[string]member // by node name, every node seen
}

func (t *table) snapshot() map[string]member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]member, len(t.members))
	for k, v := range t.members {
		out[k] = v
	}
	return out
}

// Gossip runs memberlist for one cluster.
type Gossip struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	ml        *memberlist.Memberlist
	cfg       Config
	port      int
	appliedAt time.Time
	table     *table
	kick      chan struct{}
}

// New returns a Gossip that starts with the first Apply.
func New(opts Options) (*Gossip, error) {
	if opts.NodeName == "" {
		return nil, errors.New("gossip: the node name is required")
	}
	if net.ParseIP(opts.AdvertiseAddr) == nil {
		return nil, fmt.Errorf("gossip: advertise address %q is not an IP address", opts.AdvertiseAddr)
	}
	if opts.BindAddr == "" {
		opts.BindAddr = "0.0.0.0"
	}
	if opts.Grace == 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.RejoinInterval == 0 {
		opts.RejoinInterval = 15 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Gossip{opts: opts, log: logger, table: &table{members: map[string]member{}}, kick: make(chan struct{}, 1)}, nil
}

// Apply starts gossip with cfg, or updates it: new peers are joined; a changed key, label
// or port restarts memberlist.
func (g *Gossip) Apply(ctx context.Context, cfg Config) error {
	if err := g.apply(cfg); err != nil {
		return err
	}
	if g.opts.StateFile != "" {
		b, err := json.Marshal(cfg)
		if err != nil {
			return fmt.Errorf("gossip config: save: %w", err)
		}
		if err := identity.WriteFileAtomic(g.opts.StateFile, b, 0o600); err != nil {
			return fmt.Errorf("gossip config: save: %w", err)
		}
	}
	return nil
}

// Restore applies the configuration saved in StateFile, if there is one.
func (g *Gossip) Restore() error {
	if g.opts.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(g.opts.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gossip: restore: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("gossip: restore %s: %w", g.opts.StateFile, err)
	}
	return g.apply(cfg)
}

func (g *Gossip) apply(cfg Config) error {
	if n := len(cfg.Key); n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("gossip config: key has %d bytes, want 16, 24 or 32", n)
	}
	if len(cfg.Label) > 255 {
		return errors.New("gossip config: label is longer than 255 bytes")
	}
	port := g.opts.Port
	if port == 0 {
		port = cfg.Port
	}
	if port == 0 {
		port = DefaultPort
	}
	cfg.Key = bytes.Clone(cfg.Key)
	cfg.Peers = g.withoutSelf(cfg.Peers, port)

	g.mu.Lock()
	defer g.mu.Unlock()
	restart := g.ml == nil || !bytes.Equal(g.cfg.Key, cfg.Key) || g.cfg.Label != cfg.Label || g.port != port
	if restart {
		if g.ml != nil {
			g.log.Info("gossip configuration changed; restarting memberlist", "label", cfg.Label, "port", port)
			g.shutdownLocked()
		}
		t := &table{members: map[string]member{}}
		ml, err := g.start(cfg, port, t)
		if err != nil {
			return err
		}
		g.ml = ml
		g.port = port
		g.table = t
		g.appliedAt = time.Now()
	} else if !slices.Equal(g.cfg.Peers, cfg.Peers) {
		g.appliedAt = time.Now()
	}
	g.cfg = cfg
	// Forget departed members that are no longer configured (removed nodes).
	g.table.mu.Lock()
	for name, m := range g.table.members {
		if !m.alive && !slices.Contains(cfg.Peers, m.addr) {
			delete(g.table.members, name)
		}
	}
	g.table.mu.Unlock()
	g.log.Info("gossip configured", "label", cfg.Label, "port", port, "peers", len(cfg.Peers))
	select {
	case g.kick <- struct{}{}:
	default:
	}
	go g.join(g.ml, cfg.Peers)
	return nil
}

func (g *Gossip) withoutSelf(peers []string, port int) []string {
	self := net.JoinHostPort(g.opts.AdvertiseAddr, strconv.Itoa(port))
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		if p != self && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (g *Gossip) start(cfg Config, port int, t *table) (*memberlist.Memberlist, error) {
	c := memberlist.DefaultLANConfig()
	if g.opts.Local {
		c = memberlist.DefaultLocalConfig()
	}
	c.Name = g.opts.NodeName
	c.BindAddr = g.opts.BindAddr
	c.BindPort = port
	c.AdvertiseAddr = g.opts.AdvertiseAddr
	c.AdvertisePort = port
	c.SecretKey = cfg.Key
	c.Label = cfg.Label
	c.Events = &events{t: t}
	c.Logger = log.New(&logWriter{log: g.log}, "", 0)
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist on %s:%d: %w", g.opts.BindAddr, port, err)
	}
	return ml, nil
}

func (g *Gossip) join(ml *memberlist.Memberlist, peers []string) {
	if len(peers) == 0 {
		return
	}
	n, err := ml.Join(peers)
	if err != nil {
		g.log.Debug("gossip join", "contacted", n, "of", len(peers), "error", err)
	}
}

// Run retries configured peers that are not alive every RejoinInterval, until ctx ends;
// then it leaves the cluster and stops memberlist.
func (g *Gossip) Run(ctx context.Context) {
	t := time.NewTicker(g.opts.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.Close()
			return
		case <-g.kick:
		case <-t.C:
			g.mu.Lock()
			ml := g.ml
			var missing []string
			if ml != nil {
				for _, p := range g.cfg.Peers {
					if !g.aliveAtLocked(p) {
						missing = append(missing, p)
					}
				}
			}
			g.mu.Unlock()
			if len(missing) > 0 {
				g.join(ml, missing)
			}
		}
	}
}

// Close leaves the cluster (so peers learn at once) and stops memberlist.
func (g *Gossip) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ml != nil {
		g.shutdownLocked()
	}
}

func (g *Gossip) shutdownLocked() {
	ml := g.ml
	g.ml = nil
	if err := ml.Leave(time.Second); err != nil {
		g.log.Debug("gossip leave", "error", err)
	}
	if err := ml.Shutdown(); err != nil {
		g.log.Debug("gossip shutdown", "error", err)
	}
}

// Stop stops memberlist without leaving, as a crash would; for tests of failure detection.
func (g *Gossip) Stop() {
	g.mu.Lock()
	ml := g.ml
	g.ml = nil
	g.mu.Unlock()
	if ml != nil {
		_ = ml.Shutdown()
	}
}

func (g *Gossip) aliveAtLocked(addr string) bool {
	for _, m := range g.table.snapshot() {
		if m.addr == addr && m.alive {
			return true
		}
	}
	return false
}

// Peers returns the node names of peers gossip sees alive and of those it cannot reach:
// members memberlist declared dead or that left, and — by address, since the configuration
// names no node — configured peers never seen within the grace period.
func (g *Gossip) Peers() (reachable, unreachable []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ml == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	for name, m := range g.table.snapshot() {
		seen[m.addr] = true
		if name == g.opts.NodeName {
			continue
		}
		if m.alive {
			reachable = append(reachable, name)
		} else {
			unreachable = append(unreachable, name)
		}
	}
	if time.Since(g.appliedAt) >= g.opts.Grace {
		for _, p := range g.cfg.Peers {
			if !seen[p] {
				unreachable = append(unreachable, p)
			}
		}
	}
	slices.Sort(reachable)
	slices.Sort(unreachable)
	return reportWindow(reachable, g.opts.NodeName, MaxReportedPeers),
		reportWindow(unreachable, g.opts.NodeName, MaxReportedPeers)
}

// MaxReportedPeers is how many peers a report names in each of its two lists, the limit the
// control plane enforces (max_items of reachable_peers and unreachable_peers in agent.proto):
// a longer list would have the whole report refused, and the node counted silent.
const MaxReportedPeers = 1000

// reportWindow returns names (sorted) if it has at most max entries, else max consecutive
// ones (wrapping around) starting at a place that depends on self: in a cluster too large
// for one report to name every peer, each node names its own slice of them, so that
// together the nodes still vouch for every peer.
func reportWindow(names []string, self string, max int) []string {
	if len(names) <= max {
		return names
	}
	h := fnv.New32a()
	h.Write([]byte(self))
	start := int(h.Sum32() % uint32(len(names)))
	out := make([]string, 0, max)
	out = append(out, names[start:min(len(names), start+max)]...)
	return append(out, names[:max-len(out)]...)
}

// events records membership changes into a table.
type events struct{ t *table }

func (e *events) set(n *memberlist.Node, alive bool) {
	e.t.mu.Lock()
	defer e.t.mu.Unlock()
	e.t.members[n.Name] = member{addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), alive: alive}
}

func (e *events) NotifyJoin(n *memberlist.Node)   { e.set(n, true) }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.set(n, false) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.set(n, true) }

// logWriter turns memberlist's "[LEVEL] memberlist: ..." lines into slog records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG] ": slog.LevelDebug, "[INFO] ": slog.LevelInfo, "[WARN] ": slog.LevelWarn, "[ERR] ": slog.LevelError} {
		if i := bytes.Index(p, []byte(prefix)); i >= 0 {
			level = l
			line = string(bytes.TrimSpace(p[i+len(prefix):]))
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
