package nodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// MaintainMetrics rolls raw samples older than RollupAfter into 5-minute buckets, then
// deletes raw samples older than RawRetention and buckets older than RollupRetention. Every
// replica may run it: rolling up twice changes nothing.
func (m *Manager) MaintainMetrics(ctx context.Context) error {
	now := m.now()
	until := now.Add(-RollupAfter).Truncate(store.RollupBucket)
	m.mu.Lock()
	from := m.rolledUntil
	m.mu.Unlock()
	if from.IsZero() {
		from = time.Unix(0, 0) // first run: whatever is left, after a long stop too
	} else {
		from = from.Add(-RollupAfter) // samples that arrived late
	}
	err := m.store.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.RollupNodeMetrics(ctx, from, until); err != nil {
			return err
		}
		_, _, err := q.DeleteNodeMetrics(ctx, now.Add(-RawRetention), now.Add(-RollupRetention))
		return err
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.rolledUntil = until
	m.mu.Unlock()
	return nil
}

// Metric names GetNodeMetrics serves, in the order it returns them.
var MetricNames = []string{"cpu_percent", "memory_used_bytes", "memory_percent", "disk_used_bytes",
	"net_rx_bytes", "net_tx_bytes", "load1"}

// maxMetricPoints bounds the points of one series.
const maxMetricPoints = 5000

// ErrInvalidMetricsQuery wraps what is wrong with a MetricsQuery; the text after it names the
// field.
var ErrInvalidMetricsQuery = errors.New("invalid metrics query")

// MetricsQuery asks for a node's metrics. Zero fields take defaults: Until now, Since an hour
// before Until, Step (Until-Since)/120 but at least the report interval, Names all.
type MetricsQuery struct {
	NodeID       uuid.UUID
	Since, Until time.Time
	Step         time.Duration
	Names        []string
}

// Series is one metric over time.
type Series struct {
	Name   string
	Points []Point
}

// Point is one average over a step, at the step's start.
type Point struct {
	At    time.Time
	Value float64
}

// Metrics returns a node's metrics over a range, averaged per step: from the raw samples for
// steps finer than the 5-minute rollups (as far back as raw samples are kept), from the
// rollups otherwise (and for the most recent hour, not rolled up yet, from raw samples).
func (m *Manager) Metrics(ctx context.Context, mq MetricsQuery) ([]Series, error) {
	now := m.now()
	if mq.Until.IsZero() {
		mq.Until = now
	}
	if mq.Since.IsZero() {
		mq.Since = mq.Until.Add(-time.Hour)
	}
	if !mq.Since.Before(mq.Until) {
		return nil, fmt.Errorf("%w: since must be before until", ErrInvalidMetricsQuery)
	}
	span := mq.Until.Sub(mq.Since)
	if mq.Step == 0 {
		mq.Step = max((span / 120).Truncate(time.Second), m.opts.ReportInterval)
	}
	if mq.Step < time.Second {
		return nil, fmt.Errorf("%w: step must be at least 1s", ErrInvalidMetricsQuery)
	}
	if span/mq.Step > maxMetricPoints {
		return nil, fmt.Errorf("%w: step: at most %d points per series; use a step of at least %s",
			ErrInvalidMetricsQuery, maxMetricPoints, (span / maxMetricPoints).Round(time.Second))
	}
	names := MetricNames
	if len(mq.Names) > 0 {
		names = nil
		for _, n := range MetricNames {
			if slices.Contains(mq.Names, n) {
				names = append(names, n)
			}
		}
		for _, n := range mq.Names {
			if !slices.Contains(MetricNames, n) {
				return nil, fmt.Errorf("%w: names: unknown metric %q", ErrInvalidMetricsQuery, n)
			}
		}
	}
	sq := store.NodeMetricsQuery{NodeID: mq.NodeID, Since: mq.Since, Until: mq.Until, Step: mq.Step}
	if mq.Step < store.RollupBucket {
		rawFrom := now.Add(-RawRetention)
		sq.RawFrom = &rawFrom
	}
	points, err := m.store.NodeMetricSeries(ctx, sq)
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(names))
	for i, name := range names {
		s := Series{Name: name, Points: make([]Point, 0, len(points))}
		for _, p := range points {
			s.Points = append(s.Points, Point{At: p.At, Value: metricValue(name, p)})
		}
		out[i] = s
	}
	return out, nil
}

func metricValue(name string, p store.NodeMetricPoint) float64 {
	switch name {
	case "cpu_percent":
		return p.CPUPercent
	case "memory_used_bytes":
		return p.MemoryUsedBytes
	case "memory_percent":
		if p.MemoryTotalBytes <= 0 {
			return 0
		}
		return 100 * p.MemoryUsedBytes / p.MemoryTotalBytes
	case "disk_used_bytes":
		return p.DiskUsedBytes
	case "net_rx_bytes":
		return p.NetRxBytes
	case "net_tx_bytes":
		return p.NetTxBytes
	case "load1":
		return p.Load1
	}
	return 0
}
