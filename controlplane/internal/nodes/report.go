package nodes

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// DecodeReport reads a report kept in nodes.last_report (protobuf, as the agent sent it).
func DecodeReport(raw []byte) (*agentv1.ReportRequest, error) {
	r := &agentv1.ReportRequest{}
	if len(raw) == 0 {
		return r, nil
	}
	if err := proto.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("decode node report: %w", err)
	}
	return r, nil
}

// touch records that the node was heard from now. clusterID may be uuid.Nil when unknown.
func (m *Manager) touch(nodeID, clusterID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ln := m.live[nodeID]
	if ln == nil {
		ln = &liveNode{}
		m.live[nodeID] = ln
	}
	ln.seen = m.now()
	if clusterID != uuid.Nil {
		ln.clusterID = clusterID
	}
}

// Report takes a node's heartbeat: it is kept in memory for health checks at once and written
// (latest report, last-seen time, metric sample) in the next batch. A report over the CPU or
// memory threshold raises an alert, at most once per cooldown. It returns the interval the
// agent should report at.
func (m *Manager) Report(ctx context.Context, nodeID uuid.UUID, r *agentv1.ReportRequest) (*agentv1.ReportResponse, error) {
	now := m.now()
	m.mu.Lock()
	ln := m.live[nodeID]
	clusterID := uuid.Nil
	if ln != nil {
		clusterID = ln.clusterID
	}
	m.mu.Unlock()
	if clusterID == uuid.Nil {
		// Not heard from on this replica yet (its session may still be starting).
		id, removed, err := m.store.NodeCluster(ctx, nodeID)
		if err != nil {
			return nil, fmt.Errorf("report: load node: %w", err)
		}
		if removed {
			return nil, ErrNodeRemoved
		}
		clusterID = id
	}
	digest := r.GetPeersDigest()
	peers := reportPeers(r) // outside the lock
	named := peers != noPeers
	stored := r
	if named {
		// The lists live in their own columns: the stored report is the same whether
		// they were named or left out.
		stored = proto.CloneOf(r)
		stored.ReachablePeers, stored.UnreachablePeers = nil, nil
	} else if digest != 0 {
		peers = nil // left out: the lists held stand, if these are they
	}
	raw, err := proto.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("report: encode: %w", err)
	}
	sampledAt := now
	if ts := r.GetSampledAt(); ts != nil && ts.IsValid() {
		// The agent's clock dates the sample, unless it runs ahead of ours.
		if at := ts.AsTime(); at.Before(now) {
			sampledAt = at
		}
	}

	m.mu.Lock()
	ln = m.live[nodeID]
	if ln == nil {
		ln = &liveNode{}
		m.live[nodeID] = ln
	}
	ln.clusterID, ln.seen = clusterID, now
	write := store.NodeReportWrite{NodeID: nodeID, ClusterID: clusterID, Report: raw, SeenAt: now,
		OverlayEncryption: r.GetDocker().GetOverlayEncryption()}
	switch {
	case peers != nil:
		// Lists named (or none to name): store them when they are not the ones held, or
		// when an agent names them without a digest.
		if ln.peers == nil || digest != ln.peersDigest || (digest == 0 && named) {
			write.Peers = peers
		}
		ln.peers, ln.peersDigest = peers, digest
	case digest != ln.peersDigest || ln.peers == nil:
		// Left out, but not the lists held here (this replica restarted, or the node
		// reported to another one): unknown until the next report names them, which the
		// answer's digest asks for; the health pass reads the stored ones meanwhile.
		ln.peers, ln.peersDigest = nil, 0
	}
	m.pending[nodeID] = laterWrite(m.pending[nodeID], write)
	heldDigest := ln.peersDigest
	if h := r.GetHost(); h != nil {
		if len(m.samples) >= maxPendingSamples {
			m.samples = slices.Delete(m.samples, 0, len(m.samples)/10) // the database is away: drop the oldest
		}
		m.samples = append(m.samples, store.NodeMetricSample{
			NodeID: nodeID, SampledAt: sampledAt.Truncate(time.Millisecond), CPUPercent: h.GetCpuPercent(),
			MemoryUsedBytes: h.GetMemoryUsedBytes(), MemoryTotalBytes: h.GetMemoryTotalBytes(),
			DiskUsedBytes: h.GetDiskUsedBytes(), DiskTotalBytes: h.GetDiskTotalBytes(),
			NetRxBytes: h.GetNetRxBytes(), NetTxBytes: h.GetNetTxBytes(), Load1: h.GetLoad1(),
		})
	}
	state := m.states[nodeID]
	// The answer is the keepalive of the node's stream here when both share a connection.
	streamKeepalive := false
	if s := m.sessions[nodeID]; s != nil && s.conn != nil && s.conn == connectionOf(ctx) {
		s.heardAt.Store(monoNow())
		streamKeepalive = true
	}
	m.mu.Unlock()

	// A silent node that speaks again is ready on the next health pass: ask for one now.
	if state == store.NodeDown || state == store.NodeUnreachable {
		select {
		case m.healthNudge <- struct{}{}:
		default:
		}
	}
	if err := m.resourceAlerts(ctx, nodeID, r.GetHost()); err != nil {
		m.logger.Warn("raise resource alert", "node_id", nodeID.String(), "err", err)
	}
	return &agentv1.ReportResponse{IntervalSeconds: int32(m.opts.ReportInterval / time.Second), PeersDigest: heldDigest,
		StreamKeepalive: streamKeepalive}, nil
}

// laterWrite is the write of a node's newer report, which replaces the older one in a
// batch, with the peer lists the older one named when the newer leaves them out (they were
// not written yet).
func laterWrite(older, newer store.NodeReportWrite) store.NodeReportWrite {
	if newer.Peers == nil {
		newer.Peers = older.Peers
	}
	return newer
}

// resourceAlerts raises node.cpu_high and node.memory_high for a report over the thresholds.
func (m *Manager) resourceAlerts(ctx context.Context, nodeID uuid.UUID, h *agentv1.HostMetrics) error {
	if h == nil {
		return nil
	}
	if h.GetCpuPercent() > CPUHighPercent {
		meta := map[string]string{"cpu_percent": strconv.FormatFloat(h.GetCpuPercent(), 'f', 1, 64)}
		if err := m.alertNow(ctx, nodeID, "node.cpu_high", meta); err != nil {
			return err
		}
	}
	if total := h.GetMemoryTotalBytes(); total > 0 {
		pct := 100 * float64(h.GetMemoryUsedBytes()) / float64(total)
		if pct > MemoryHighPercent {
			meta := map[string]string{"memory_percent": strconv.FormatFloat(pct, 'f', 1, 64)}
			if err := m.alertNow(ctx, nodeID, "node.memory_high", meta); err != nil {
				return err
			}
		}
	}
	return nil
}

// alertNow records an alert in its own transaction.
func (m *Manager) alertNow(ctx context.Context, nodeID uuid.UUID, event string, meta map[string]string) error {
	if m.coolingDown(nodeID, event) {
		return nil
	}
	return m.store.InTx(ctx, func(q *store.Queries) error {
		_, err := m.alert(ctx, q, nodeID, event, meta)
		return err
	})
}

// coolingDown reports whether this replica knows the alert fired within the cooldown.
func (m *Manager) coolingDown(nodeID uuid.UUID, event string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.alerted[alertKey{nodeID, event}]
	return ok && m.now().Sub(at) < m.opts.AlertCooldown
}

// alert records an alert as a platform-wide activity event in q's transaction, unless one of
// the same kind about the node was recorded within the cooldown (by any replica). It reports
// whether it recorded one.
func (m *Manager) alert(ctx context.Context, q *store.Queries, nodeID uuid.UUID, event string, meta map[string]string) (bool, error) {
	now := m.now()
	key := alertKey{nodeID, event}
	if m.coolingDown(nodeID, event) {
		return false, nil
	}
	last, err := q.LatestNodeAlert(ctx, nodeID, event)
	if err != nil {
		return false, fmt.Errorf("alert %s: %w", event, err)
	}
	if last != nil && now.Sub(*last) < m.opts.AlertCooldown {
		m.mu.Lock()
		m.alerted[key] = *last
		m.mu.Unlock()
		return false, nil
	}
	if meta == nil {
		meta = map[string]string{}
	}
	if _, err := q.InsertActivity(ctx, store.ActivityEvent{
		ActorKind: store.ActorSystem, EventType: event, EntityType: "node", EntityID: nodeID.String(), Metadata: meta,
	}); err != nil {
		return false, fmt.Errorf("alert %s: %w", event, err)
	}
	m.mu.Lock()
	m.alerted[key] = now
	m.mu.Unlock()
	m.logger.Warn("node alert", "node_id", nodeID.String(), "event", event)
	return true, nil
}

// Flush writes the latest reports and the metric samples taken since the last flush, in one
// transaction, and tells watchers of the clusters concerned. On failure they are kept for the
// next try.
func (m *Manager) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	if m.spare == nil {
		m.spare = map[uuid.UUID]store.NodeReportWrite{}
	}
	m.mu.Lock()
	pending, samples := m.pending, m.samples
	m.pending, m.samples = m.spare, m.spareSamples[:0]
	m.spare, m.spareSamples = nil, nil
	m.mu.Unlock()
	defer func() {
		clear(pending)
		m.spare = pending
	}()
	if len(pending) == 0 && len(samples) == 0 {
		m.spareSamples = samples
		return nil
	}
	writes := m.writes[:0]
	defer func() {
		clear(writes) // drop the reports' bytes
		m.writes = writes[:0]
	}()
	clusters := map[uuid.UUID]struct{}{}
	for _, w := range pending {
		writes = append(writes, w)
		clusters[w.ClusterID] = struct{}{}
	}
	var skipped []store.NodeReportWrite
	err := m.store.InTx(ctx, func(q *store.Queries) error {
		written, err := q.WriteNodeReports(ctx, writes)
		if err != nil {
			return err
		}
		done := make(map[uuid.UUID]bool, len(written))
		for _, id := range written {
			done[id] = true
		}
		skipped = nil
		for _, w := range writes {
			if !done[w.NodeID] {
				skipped = append(skipped, w)
			}
		}
		if err := q.InsertNodeMetrics(ctx, samples); err != nil {
			return err
		}
		for id := range clusters {
			if err := q.NotifyNodesChanged(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	keep := writes // on failure every report waits for the next flush
	if err == nil {
		// Nodes busy with a lifecycle step: their latest report is written next time.
		keep = skipped
		m.spareSamples = samples[:0]
		samples = nil
	}
	if len(keep) > 0 || len(samples) > 0 {
		m.mu.Lock()
		for _, w := range keep {
			if newer, ok := m.pending[w.NodeID]; !ok || newer.SeenAt.Before(w.SeenAt) {
				m.pending[w.NodeID] = laterWrite(newer, w)
			} else {
				m.pending[w.NodeID] = laterWrite(w, newer)
			}
		}
		m.samples = append(samples, m.samples...)
		if len(m.samples) > maxPendingSamples {
			m.samples = m.samples[len(m.samples)-maxPendingSamples:]
		}
		m.mu.Unlock()
	}
	return err
}
