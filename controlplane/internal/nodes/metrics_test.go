package nodes_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// sample inserts a raw metric sample whose CPU is cpu and memory used mem (of 100).
func (b *bundle) sample(t *testing.T, nodeID uuid.UUID, at time.Time, cpu float64, mem int64) {
	t.Helper()
	b.exec(t, `INSERT INTO node_metrics (node_id, sampled_at, cpu_percent, memory_used_bytes, memory_total_bytes,
		disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes, load1) VALUES ($1, $2, $3, $4, 100, 0, 0, 0, 0, 1)`,
		nodeID, at, cpu, mem)
}

// maintain rolls up and expires metrics as a replica that just started would: its first
// run looks at every raw sample (later runs look back an hour from where they stopped).
func (b *bundle) maintain(t *testing.T) {
	t.Helper()
	fresh := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger()})
	require.NoError(t, fresh.MaintainMetrics(b.ctx))
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, sql, args...).Scan(&n))
	return n
}

func TestMetricsRollUpAfterAnHourAndExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, nodeID, _ := activeCluster(t, b)
	now := time.Now()
	bucket := now.Add(-2 * time.Hour).Truncate(store.RollupBucket)
	// Two hours ago: three samples in one 5-minute bucket.
	b.sample(t, nodeID, bucket.Add(10*time.Second), 10, 10)
	b.sample(t, nodeID, bucket.Add(20*time.Second), 20, 20)
	b.sample(t, nodeID, bucket.Add(4*time.Minute), 60, 60)
	// Ten minutes ago: stays raw, not rolled up yet.
	b.sample(t, nodeID, now.Add(-10*time.Minute), 50, 50)
	// Older than a day: gone (after being rolled up), and a rollup older than 30 days.
	b.sample(t, nodeID, now.Add(-25*time.Hour), 70, 70)
	b.exec(t, `INSERT INTO node_metrics_5m (node_id, bucket, samples, cpu_percent, memory_used_bytes, memory_total_bytes,
		disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes, load1)
		VALUES ($1, $2, 1, 1, 1, 100, 0, 0, 0, 0, 0)`, nodeID, now.Add(-31*24*time.Hour).Truncate(store.RollupBucket))

	b.maintain(t)
	var samples int
	var cpu float64
	var mem int64
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT samples, cpu_percent, memory_used_bytes FROM node_metrics_5m
		WHERE node_id = $1 AND bucket = $2`, nodeID, bucket).Scan(&samples, &cpu, &mem))
	require.Equal(t, 3, samples)
	require.InDelta(t, 30, cpu, 0.001)
	require.Equal(t, int64(30), mem)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM node_metrics_5m WHERE bucket > now() - interval '1 hour'`),
		"the last hour is not rolled up")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM node_metrics_5m WHERE bucket < now() - interval '24 hours'`),
		"the day-old sample was rolled up before it was deleted")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM node_metrics_5m WHERE bucket < now() - interval '30 days'`))
	require.Equal(t, 4, b.count(t, `SELECT count(*) FROM node_metrics`), "raw samples of the last day stay")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM node_metrics WHERE sampled_at < now() - interval '24 hours'`))

	// Running again changes nothing; a late sample in a rolled-up bucket is counted.
	require.NoError(t, b.m.MaintainMetrics(b.ctx))
	b.sample(t, nodeID, bucket.Add(5*time.Second), 30, 30)
	require.NoError(t, b.m.MaintainMetrics(b.ctx))
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT samples, cpu_percent FROM node_metrics_5m
		WHERE node_id = $1 AND bucket = $2`, nodeID, bucket).Scan(&samples, &cpu))
	require.Equal(t, 4, samples)
	require.InDelta(t, 30, cpu, 0.001)
}

func TestNodeMetricsComeAtTheAskedStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, nodeID, _ := activeCluster(t, b)
	// Half an hour of samples every 10 s, the CPU equal to the minute within the half hour
	// (0..29) and memory at 50 %.
	start := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	for i := range 180 {
		b.sample(t, nodeID, start.Add(time.Duration(i)*10*time.Second), float64(i/6), 50)
	}

	series, err := b.m.Metrics(b.ctx, nodes.MetricsQuery{
		NodeID: nodeID, Since: start, Until: start.Add(30 * time.Minute), Step: time.Minute,
		Names: []string{"memory_percent", "cpu_percent"},
	})
	require.NoError(t, err)
	require.Len(t, series, 2)
	require.Equal(t, "cpu_percent", series[0].Name, "in the documented order")
	require.Equal(t, "memory_percent", series[1].Name)
	cpu := series[0].Points
	require.Len(t, cpu, 30)
	for i, p := range cpu {
		require.True(t, start.Add(time.Duration(i)*time.Minute).Equal(p.At), "point %d at %s", i, p.At)
		require.InDelta(t, float64(i), p.Value, 0.001)
	}
	require.InDelta(t, 50, series[1].Points[0].Value, 0.001)

	// At a 10-minute step, from the rollups once they exist plus raw samples after them.
	series, err = b.m.Metrics(b.ctx, nodes.MetricsQuery{
		NodeID: nodeID, Since: start, Until: start.Add(30 * time.Minute), Step: 10 * time.Minute, Names: []string{"cpu_percent"},
	})
	require.NoError(t, err)
	var total int
	for _, p := range series[0].Points {
		total++
		require.GreaterOrEqual(t, p.Value, 0.0)
	}
	require.GreaterOrEqual(t, total, 3)
	require.LessOrEqual(t, total, 4)

	// Defaults: the last hour, at least the report interval apart, every metric.
	series, err = b.m.Metrics(b.ctx, nodes.MetricsQuery{NodeID: nodeID})
	require.NoError(t, err)
	require.Len(t, series, len(nodes.MetricNames))
	require.LessOrEqual(t, len(series[0].Points), 121)

	_, err = b.m.Metrics(b.ctx, nodes.MetricsQuery{NodeID: nodeID, Step: time.Millisecond})
	require.ErrorIs(t, err, nodes.ErrInvalidMetricsQuery)
	_, err = b.m.Metrics(b.ctx, nodes.MetricsQuery{NodeID: nodeID, Since: start, Until: start})
	require.ErrorIs(t, err, nodes.ErrInvalidMetricsQuery)
}

func TestOlderMetricsComeFromTheRollupsWithoutCountingTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, nodeID, _ := activeCluster(t, b)
	// Three hours of samples every minute at CPU 40 ...
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	for i := range 180 {
		b.sample(t, nodeID, start.Add(time.Duration(i)*time.Minute), 40, 40)
	}
	b.maintain(t)
	// ... then the raw samples of the rolled-up part change behind the rollups' back: a query
	// at a rollup step must not read them.
	b.exec(t, `UPDATE node_metrics SET cpu_percent = 99 WHERE sampled_at < now() - interval '90 minutes'`)
	series, err := b.m.Metrics(b.ctx, nodes.MetricsQuery{
		NodeID: nodeID, Since: start, Until: start.Add(3 * time.Hour), Step: 30 * time.Minute, Names: []string{"cpu_percent"},
	})
	require.NoError(t, err)
	require.Len(t, series[0].Points, 6)
	require.InDelta(t, 40, series[0].Points[0].Value, 0.001)

	// At a step finer than the rollups, the raw samples are read.
	series, err = b.m.Metrics(b.ctx, nodes.MetricsQuery{
		NodeID: nodeID, Since: start, Until: start.Add(30 * time.Minute), Step: time.Minute, Names: []string{"cpu_percent"},
	})
	require.NoError(t, err)
	require.Len(t, series[0].Points, 30)
	require.InDelta(t, 99, series[0].Points[0].Value, 0.001)
}
