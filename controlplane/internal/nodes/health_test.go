package nodes_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// fastHealth makes a node down 300 ms after its last report, checked every 20 ms.
func fastHealth(o *nodes.Options) {
	o.NodeTTL, o.NodeGrace = 200*time.Millisecond, 100*time.Millisecond
	o.HealthInterval = 20 * time.Millisecond
}

// report sends a heartbeat for a node.
func (b *bundle) report(t *testing.T, nodeID uuid.UUID, r *agentv1.ReportRequest) {
	t.Helper()
	if r == nil {
		r = &agentv1.ReportRequest{}
	}
	resp, err := b.m.Report(b.ctx, nodeID, r)
	require.NoError(t, err)
	require.Positive(t, resp.GetIntervalSeconds())
}

// waitState polls until the node is in state, meanwhile calling during (if any) on every
// poll, e.g. to keep a peer reporting.
func (b *bundle) waitState(t *testing.T, nodeID uuid.UUID, state string, during func()) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if during != nil {
			during()
		}
		n := b.getNode(t, nodeID)
		if n.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s is %s, not %s, after %s", nodeID, n.State, state, waitFor)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for the condition
	}
}

func TestASilentNodeGoesDownAfterTTLAndGraceAndRecoversOnItsNextReport(t *testing.T) {
	t.Parallel()
	b := setup(t, fastHealth)
	_, mgrID, _ := activeCluster(t, b)
	b.report(t, mgrID, nil)
	start := time.Now()
	b.waitState(t, mgrID, store.NodeDown, nil)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "not before TTL plus grace")
	require.Equal(t, 1, b.events(t, mgrID, "node.down"))

	b.report(t, mgrID, nil)
	b.waitState(t, mgrID, store.NodeReady, nil)
	require.Equal(t, 1, b.events(t, mgrID, "node.recovered"))
}

func TestWithShortTTLsHealthIsCheckedOftenEnoughToHonourThem(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) {
		o.NodeTTL, o.NodeGrace = 200*time.Millisecond, 100*time.Millisecond
		o.HealthInterval = 0 // derived from TTL plus grace, not the 5 s default
	})
	_, mgrID, _ := activeCluster(t, b)
	b.report(t, mgrID, nil)
	start := time.Now()
	b.waitState(t, mgrID, store.NodeDown, nil)
	require.Less(t, time.Since(start), nodes.DefaultHealthInterval, "down long before a 5 s health pass would have seen it")
}

func TestANodeItsPeersStillSeeIsUnreachableNotDown(t *testing.T) {
	t.Parallel()
	b := setup(t, fastHealth)
	clusterID, mgrID, workerID := activeCluster(t, b)
	otherID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.3", "swarm-other")
	b.report(t, workerID, nil)
	b.report(t, otherID, nil)

	// The manager keeps reporting that it sees the worker; the third node that it does not.
	peersSay := func() {
		b.report(t, mgrID, &agentv1.ReportRequest{ReachablePeers: []string{workerID.String()}})
		b.report(t, otherID, &agentv1.ReportRequest{UnreachablePeers: []string{workerID.String()}})
	}
	b.waitState(t, workerID, store.NodeUnreachable, peersSay)
	require.Equal(t, 1, b.events(t, workerID, "node.unreachable"))
	require.Zero(t, b.events(t, workerID, "node.down"))
	require.Equal(t, []uuid.UUID{otherID}, b.getNode(t, workerID).UnreachableFrom)

	// Once nobody vouches for it, it is down.
	b.waitState(t, workerID, store.NodeDown, func() {
		b.report(t, mgrID, nil)
		b.report(t, otherID, nil)
	})
	require.Equal(t, 1, b.events(t, workerID, "node.down"))
}

// A replica that never heard from a node's peers (another replica took their reports, or
// it just started) reads what they said from their stored reports.
func TestAReplicaReadsWhatPeersSaidFromTheirStoredReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	b.report(t, mgrID, &agentv1.ReportRequest{ReachablePeers: []string{workerID.String()}})
	require.NoError(t, b.m.Flush(b.ctx))
	b.exec(t, `UPDATE nodes SET last_seen_at = now() - interval '1 hour' WHERE id = $1`, workerID)

	other := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger(), Now: b.clock.Now})
	require.NoError(t, other.CheckHealth(b.ctx))
	require.Equal(t, store.NodeUnreachable, b.getNode(t, workerID).State, "the manager's stored report still sees the worker")
	require.Equal(t, store.NodeReady, b.getNode(t, mgrID).State)
}

// Agents leave their peer lists out of a report once the control plane's answer echoes
// their digest: the lists held (in memory, else stored) stand until a report names others.
func TestPeerListsLeftOutOfAReportAreTheOnesHeld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	report := func(m *nodes.Manager, nodeID uuid.UUID, r *agentv1.ReportRequest) uint64 {
		t.Helper()
		resp, err := m.Report(b.ctx, nodeID, r)
		require.NoError(t, err)
		return resp.GetPeersDigest()
	}
	stored := func(nodeID uuid.UUID) (reachable, unreachable []uuid.UUID) {
		t.Helper()
		require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT reachable_peers, unreachable_peers FROM nodes WHERE id = $1`,
			nodeID).Scan(&reachable, &unreachable))
		return reachable, unreachable
	}
	workerState := func(m *nodes.Manager) string {
		t.Helper()
		require.NoError(t, m.CheckHealth(b.ctx))
		return b.getNode(t, workerID).State
	}
	seesWorker := &agentv1.ReportRequest{ReachablePeers: []string{workerID.String()}, PeersDigest: 7}
	same := &agentv1.ReportRequest{PeersDigest: 7}

	require.Zero(t, report(b.m, workerID, nil), "a node without peers holds digest 0")
	require.Equal(t, uint64(7), report(b.m, mgrID, seesWorker))
	require.NoError(t, b.m.Flush(b.ctx))
	last, err := nodes.DecodeReport(b.getNode(t, mgrID).LastReport)
	require.NoError(t, err)
	require.Empty(t, last.GetReachablePeers(), "the lists are kept in their columns, not in the stored report")
	require.Equal(t, uint64(7), report(b.m, mgrID, same), "lists left out, the ones held echoed")
	require.NoError(t, b.m.Flush(b.ctx))
	reachable, unreachable := stored(mgrID)
	require.Equal(t, []uuid.UUID{workerID}, reachable)
	require.Empty(t, unreachable)

	// The worker falls silent; the manager's reports, without lists, still vouch for it.
	b.clock.Advance(time.Hour)
	require.Equal(t, uint64(7), report(b.m, mgrID, same))
	require.Equal(t, store.NodeUnreachable, workerState(b.m))

	// A restarted control plane does not hold them: it echoes no digest (the agent names
	// them next time) and meanwhile reads the stored ones.
	b.exec(t, `UPDATE nodes SET state = 'ready' WHERE id = $1`, workerID)
	restarted := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger(), Now: b.clock.Now})
	require.Zero(t, report(restarted, mgrID, same))
	require.Equal(t, store.NodeUnreachable, workerState(restarted), "the stored lists still vouch for the worker")

	// New lists replace the held and stored ones.
	deadWorker := &agentv1.ReportRequest{UnreachablePeers: []string{workerID.String()}, PeersDigest: 9}
	require.Equal(t, uint64(9), report(restarted, mgrID, deadWorker))
	require.Equal(t, store.NodeDown, workerState(restarted), "nobody vouches for the worker now")
	require.NoError(t, restarted.Flush(b.ctx))
	reachable, unreachable = stored(mgrID)
	require.Empty(t, reachable)
	require.Equal(t, []uuid.UUID{workerID}, unreachable)

	// Lists named in a report whose flush failed are written with the next report's, which
	// leaves them out.
	dead, cancel := context.WithCancel(b.ctx)
	cancel()
	require.Equal(t, uint64(7), report(restarted, mgrID, seesWorker))
	require.Error(t, restarted.Flush(dead))
	b.clock.Advance(time.Second)
	require.Equal(t, uint64(7), report(restarted, mgrID, same))
	require.NoError(t, restarted.Flush(b.ctx))
	reachable, unreachable = stored(mgrID)
	require.Equal(t, []uuid.UUID{workerID}, reachable)
	require.Empty(t, unreachable)
}

// A report that leaves its lists out while the flush of the one that named them is under way
// does not lose them when that flush fails.
func TestPeerListsOfAFailedFlushOutliveALaterReport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	_, err := b.m.Report(b.ctx, mgrID, &agentv1.ReportRequest{ReachablePeers: []string{workerID.String()}, PeersDigest: 7})
	require.NoError(t, err)

	// Hold the flush inside its transaction: the nodes table locked against its row locks.
	tx, err := b.st.Pool().Begin(b.ctx)
	require.NoError(t, err)
	defer tx.Rollback(b.ctx)
	_, err = tx.Exec(b.ctx, `LOCK TABLE nodes IN EXCLUSIVE MODE`)
	require.NoError(t, err)
	flushCtx, cancel := context.WithCancel(b.ctx)
	flushed := make(chan error, 1)
	go func() { flushed <- b.m.Flush(flushCtx) }()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM pg_locks
			WHERE NOT granted AND relation = 'nodes'::regclass`).Scan(&waiting))
		return waiting > 0
	}, waitFor, 10*time.Millisecond, "the flush never waited for the lock")

	b.clock.Advance(time.Second)
	_, err = b.m.Report(b.ctx, mgrID, &agentv1.ReportRequest{PeersDigest: 7})
	require.NoError(t, err)
	cancel()
	require.Error(t, <-flushed)
	require.NoError(t, tx.Rollback(b.ctx))

	require.NoError(t, b.m.Flush(b.ctx))
	var reachable []uuid.UUID
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT reachable_peers FROM nodes WHERE id = $1`, mgrID).Scan(&reachable))
	require.Equal(t, []uuid.UUID{workerID}, reachable)
}

func TestANodeThatNeverConnectedStaysEnrolling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "active")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.3", "")
	b.clock.Advance(time.Hour)
	require.NoError(t, b.m.CheckHealth(b.ctx))
	require.Equal(t, store.NodeEnrolling, b.getNode(t, nodeID).State)
}

func TestAlertsRespectTheCooldown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, _ := activeCluster(t, b)
	hot := &agentv1.ReportRequest{Host: &agentv1.HostMetrics{CpuPercent: 97, MemoryUsedBytes: 95, MemoryTotalBytes: 100}}
	b.report(t, mgrID, hot)
	b.report(t, mgrID, hot)
	require.Equal(t, 1, b.events(t, mgrID, "node.cpu_high"))
	require.Equal(t, 1, b.events(t, mgrID, "node.memory_high"))

	b.clock.Advance(14 * time.Minute)
	b.report(t, mgrID, hot)
	require.Equal(t, 1, b.events(t, mgrID, "node.cpu_high"), "within 15 minutes")

	b.clock.Advance(2 * time.Minute)
	b.report(t, mgrID, hot)
	require.Equal(t, 2, b.events(t, mgrID, "node.cpu_high"), "after 15 minutes")
	require.Equal(t, 2, b.events(t, mgrID, "node.memory_high"))

	cool := &agentv1.ReportRequest{Host: &agentv1.HostMetrics{CpuPercent: 50, MemoryUsedBytes: 10, MemoryTotalBytes: 100}}
	b.clock.Advance(time.Hour)
	b.report(t, mgrID, cool)
	require.Equal(t, 2, b.events(t, mgrID, "node.cpu_high"))
}

func TestTheCooldownHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, _ := activeCluster(t, b)
	hot := &agentv1.ReportRequest{Host: &agentv1.HostMetrics{CpuPercent: 97}}
	b.report(t, mgrID, hot)
	// A second manager on the same database (another replica) knows nothing in memory.
	other := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger()})
	_, err := other.Report(b.ctx, mgrID, hot)
	require.NoError(t, err)
	require.Equal(t, 1, b.events(t, mgrID, "node.cpu_high"))
}

func TestFlappingHealthAlertsAtMostOncePerCooldown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, _ := activeCluster(t, b)
	for range 3 {
		b.report(t, mgrID, nil)
		require.NoError(t, b.m.CheckHealth(b.ctx))
		b.clock.Advance(time.Minute)
		require.NoError(t, b.m.CheckHealth(b.ctx))
		require.Equal(t, store.NodeDown, b.getNode(t, mgrID).State)
	}
	require.Equal(t, 1, b.events(t, mgrID, "node.down"))
	require.Equal(t, 1, b.events(t, mgrID, "node.recovered"))
}

func TestReportsAreWrittenInBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, _ := activeCluster(t, b)
	at := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	b.report(t, mgrID, &agentv1.ReportRequest{
		SampledAt: timestamppb.New(at),
		Host:      &agentv1.HostMetrics{CpuPercent: 12.5, MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 4 << 30, Load1: 0.5},
		Docker:    &agentv1.DockerState{OverlayEncryption: true, SwarmState: "active"},
	})
	n := b.getNode(t, mgrID)
	require.Nil(t, n.LastSeenAt, "not written before the batch")

	require.NoError(t, b.m.Flush(b.ctx))
	n = b.getNode(t, mgrID)
	require.NotNil(t, n.LastSeenAt)
	require.True(t, n.OverlayEncryption)
	last, err := nodes.DecodeReport(n.LastReport)
	require.NoError(t, err)
	require.Equal(t, 12.5, last.GetHost().GetCpuPercent())
	var count int
	var sampled time.Time
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT count(*), max(sampled_at) FROM node_metrics WHERE node_id = $1`, mgrID).Scan(&count, &sampled))
	require.Equal(t, 1, count)
	require.True(t, at.Equal(sampled), "the agent's sample time: %s, stored %s", at, sampled)
}

func TestABatchSkipsANodeBusyWithALifecycleStepAndWritesItNextTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	b.report(t, mgrID, nil)
	b.report(t, workerID, nil)

	tx, err := b.st.Pool().Begin(b.ctx)
	require.NoError(t, err)
	defer tx.Rollback(b.ctx) //nolint:errcheck
	_, err = tx.Exec(b.ctx, `SELECT 1 FROM nodes WHERE id = $1 FOR NO KEY UPDATE`, workerID)
	require.NoError(t, err)

	require.NoError(t, b.m.Flush(b.ctx), "does not wait for the locked row")
	require.NotNil(t, b.getNode(t, mgrID).LastSeenAt)
	require.Nil(t, b.getNode(t, workerID).LastSeenAt)

	require.NoError(t, tx.Rollback(b.ctx))
	require.NoError(t, b.m.Flush(b.ctx))
	require.NotNil(t, b.getNode(t, workerID).LastSeenAt)
}

// A flush that fails keeps its reports and samples for the next one, which also writes what
// arrived meanwhile; each flush writes only what arrived since the last one that succeeded.
func TestAFailedFlushLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, mgrID, workerID := activeCluster(t, b)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	sample := func(nodeID uuid.UUID, at time.Time, cpu float64) {
		b.report(t, nodeID, &agentv1.ReportRequest{SampledAt: timestamppb.New(at), Host: &agentv1.HostMetrics{CpuPercent: cpu}})
	}
	samples := func(nodeID uuid.UUID) []float64 {
		rows, err := b.st.Pool().Query(b.ctx, `SELECT cpu_percent::float8 FROM node_metrics WHERE node_id = $1 ORDER BY sampled_at`, nodeID)
		require.NoError(t, err)
		cpus, err := pgx.CollectRows(rows, pgx.RowTo[float64])
		require.NoError(t, err)
		return cpus
	}
	lastCPU := func(nodeID uuid.UUID) float64 {
		r, err := nodes.DecodeReport(b.getNode(t, nodeID).LastReport)
		require.NoError(t, err)
		return r.GetHost().GetCpuPercent()
	}

	sample(mgrID, at, 10)
	dead, cancel := context.WithCancel(b.ctx)
	cancel()
	require.Error(t, b.m.Flush(dead))
	require.Nil(t, b.getNode(t, mgrID).LastSeenAt)

	sample(workerID, at, 30)
	require.NoError(t, b.m.Flush(b.ctx))
	require.Equal(t, 10.0, lastCPU(mgrID))
	require.Equal(t, 30.0, lastCPU(workerID))
	require.Equal(t, []float64{10}, samples(mgrID))

	sample(mgrID, at.Add(time.Second), 20)
	require.Error(t, b.m.Flush(dead))
	sample(mgrID, at.Add(2*time.Second), 25)
	require.NoError(t, b.m.Flush(b.ctx))
	require.Equal(t, 25.0, lastCPU(mgrID), "the newest report wins")
	require.Equal(t, []float64{10, 20, 25}, samples(mgrID))
	require.Equal(t, []float64{30}, samples(workerID))
	require.NoError(t, b.m.Flush(b.ctx), "nothing left")
	require.Equal(t, []float64{10, 20, 25}, samples(mgrID))
}
