package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// RollupBucket is the width of the node_metrics_5m buckets.
const RollupBucket = 5 * time.Minute

// NodeMetricSample is one host-metrics sample of a node (a row of node_metrics).
type NodeMetricSample struct {
	NodeID           uuid.UUID
	SampledAt        time.Time
	CPUPercent       float64
	MemoryUsedBytes  int64
	MemoryTotalBytes int64
	DiskUsedBytes    int64
	DiskTotalBytes   int64
	NetRxBytes       int64
	NetTxBytes       int64
	Load1            float64
}

// InsertNodeMetrics stores samples in one statement; a sample a node sent twice (same
// sampled_at) is kept once, and samples of nodes deleted meanwhile are dropped.
func (q *Queries) InsertNodeMetrics(ctx context.Context, samples []NodeMetricSample) error {
	if len(samples) == 0 {
		return nil
	}
	n := len(samples)
	var (
		ids                                            = make([]uuid.UUID, n)
		at                                             = make([]time.Time, n)
		cpu, load1                                     = make([]float64, n), make([]float64, n)
		memUsed, memTotal, diskUsed, diskTotal, rx, tx = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, s := range samples {
		ids[i], at[i], cpu[i], load1[i] = s.NodeID, s.SampledAt, s.CPUPercent, s.Load1
		memUsed[i], memTotal[i], diskUsed[i], diskTotal[i] = s.MemoryUsedBytes, s.MemoryTotalBytes, s.DiskUsedBytes, s.DiskTotalBytes
		rx[i], tx[i] = s.NetRxBytes, s.NetTxBytes
	}
	_, err := q.db.Exec(ctx, `
		INSERT INTO node_metrics (node_id, sampled_at, cpu_percent, memory_used_bytes, memory_total_bytes,
			disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes, load1)
		SELECT u.* FROM unnest($1::uuid[], $2::timestamptz[], $3::real[], $4::bigint[], $5::bigint[], $6::bigint[],
			$7::bigint[], $8::bigint[], $9::bigint[], $10::real[])
			AS u(node_id, sampled_at, cpu, mem_used, mem_total, disk_used, disk_total, rx, tx, load1)
		WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = u.node_id)
		ON CONFLICT (node_id, sampled_at) DO NOTHING`,
		ids, at, cpu, memUsed, memTotal, diskUsed, diskTotal, rx, tx, load1)
	if err != nil {
		return fmt.Errorf("insert node metrics: %w", mapErr(err))
	}
	return nil
}

// RollupNodeMetrics averages the raw samples taken in [from, until) into 5-minute buckets;
// both bounds should be bucket boundaries, so every bucket it writes is whole. Running it
// again is harmless: a bucket is rewritten only from more samples than it holds, so samples
// that arrived late are counted and a bucket whose oldest raw samples were deleted since is
// never shrunk. It returns how many buckets it wrote.
func (q *Queries) RollupNodeMetrics(ctx context.Context, from, until time.Time) (int64, error) {
	tag, err := q.db.Exec(ctx, `
		INSERT INTO node_metrics_5m AS r (node_id, bucket, samples, cpu_percent, memory_used_bytes,
			memory_total_bytes, disk_used_bytes, disk_total_bytes, net_rx_bytes, net_tx_bytes, load1)
		SELECT node_id, date_bin('5 minutes', sampled_at, 'epoch'::timestamptz), count(*), avg(cpu_percent),
			round(avg(memory_used_bytes)), round(avg(memory_total_bytes)), round(avg(disk_used_bytes)),
			round(avg(disk_total_bytes)), round(avg(net_rx_bytes)), round(avg(net_tx_bytes)), avg(load1)
		FROM node_metrics WHERE sampled_at >= $1 AND sampled_at < $2
		GROUP BY 1, 2
		ON CONFLICT (node_id, bucket) DO UPDATE SET samples = EXCLUDED.samples,
			cpu_percent = EXCLUDED.cpu_percent, memory_used_bytes = EXCLUDED.memory_used_bytes,
			memory_total_bytes = EXCLUDED.memory_total_bytes, disk_used_bytes = EXCLUDED.disk_used_bytes,
			disk_total_bytes = EXCLUDED.disk_total_bytes, net_rx_bytes = EXCLUDED.net_rx_bytes,
			net_tx_bytes = EXCLUDED.net_tx_bytes, load1 = EXCLUDED.load1
		WHERE r.samples < EXCLUDED.samples`, from, until)
	if err != nil {
		return 0, fmt.Errorf("roll up node metrics: %w", mapErr(err))
	}
	return tag.RowsAffected(), nil
}

// DeleteNodeMetrics deletes raw samples taken before rawBefore and rollups of buckets that
// start before rollupsBefore.
func (q *Queries) DeleteNodeMetrics(ctx context.Context, rawBefore, rollupsBefore time.Time) (raw, rollups int64, err error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM node_metrics WHERE sampled_at < $1`, rawBefore)
	if err != nil {
		return 0, 0, fmt.Errorf("delete node metrics: %w", mapErr(err))
	}
	raw = tag.RowsAffected()
	tag, err = q.db.Exec(ctx, `DELETE FROM node_metrics_5m WHERE bucket < $1`, rollupsBefore)
	if err != nil {
		return raw, 0, fmt.Errorf("delete node metric rollups: %w", mapErr(err))
	}
	return raw, tag.RowsAffected(), nil
}

// NodeMetricPoint is the average of a node's metrics over one step.
type NodeMetricPoint struct {
	At               time.Time
	CPUPercent       float64
	MemoryUsedBytes  float64
	MemoryTotalBytes float64
	DiskUsedBytes    float64
	NetRxBytes       float64
	NetTxBytes       float64
	Load1            float64
}

// NodeMetricsQuery selects a node's metrics over [Since, Until) at Step.
type NodeMetricsQuery struct {
	NodeID       uuid.UUID
	Since, Until time.Time
	Step         time.Duration
	// RawFrom splits the range: 5-minute rollups are read before it, raw samples from it on.
	// Nil reads raw samples only after the newest rollup of the node.
	RawFrom *time.Time
}

// NodeMetricSeries averages a node's metrics over each step of the range, from the rollups
// and the raw samples (weighting each by the samples it holds); steps without data are
// absent. Points are at the start of their step, steps aligned to the Unix epoch.
func (q *Queries) NodeMetricSeries(ctx context.Context, mq NodeMetricsQuery) ([]NodeMetricPoint, error) {
	rows, err := q.db.Query(ctx, `
		WITH split AS (
			SELECT COALESCE($5::timestamptz,
				(SELECT max(bucket) + interval '5 minutes' FROM node_metrics_5m WHERE node_id = $1),
				'-infinity'::timestamptz) AS at
		), src AS (
			SELECT bucket AS at, samples::float8 AS w, cpu_percent::float8 AS cpu, memory_used_bytes::float8 AS mem,
				memory_total_bytes::float8 AS mem_total, disk_used_bytes::float8 AS disk, net_rx_bytes::float8 AS rx,
				net_tx_bytes::float8 AS tx, load1::float8 AS load1
			FROM node_metrics_5m, split
			WHERE node_id = $1 AND bucket >= $2 AND bucket < $3 AND bucket < split.at
			UNION ALL
			SELECT sampled_at, 1, cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, net_rx_bytes,
				net_tx_bytes, load1
			FROM node_metrics, split
			WHERE node_id = $1 AND sampled_at >= $2 AND sampled_at < $3 AND sampled_at >= split.at
		)
		SELECT date_bin(make_interval(secs => $4), at, 'epoch'::timestamptz) AS step,
			sum(cpu * w) / sum(w), sum(mem * w) / sum(w), sum(mem_total * w) / sum(w), sum(disk * w) / sum(w),
			sum(rx * w) / sum(w), sum(tx * w) / sum(w), sum(load1 * w) / sum(w)
		FROM src GROUP BY step ORDER BY step`,
		mq.NodeID, mq.Since, mq.Until, mq.Step.Seconds(), mq.RawFrom)
	if err != nil {
		return nil, fmt.Errorf("node metric series: %w", mapErr(err))
	}
	defer rows.Close()
	var out []NodeMetricPoint
	for rows.Next() {
		var p NodeMetricPoint
		if err := rows.Scan(&p.At, &p.CPUPercent, &p.MemoryUsedBytes, &p.MemoryTotalBytes, &p.DiskUsedBytes,
			&p.NetRxBytes, &p.NetTxBytes, &p.Load1); err != nil {
			return nil, fmt.Errorf("node metric series: %w", mapErr(err))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("node metric series: %w", mapErr(err))
	}
	return out, nil
}
