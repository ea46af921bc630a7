package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AppService is an app's Swarm service as the latest manager report saw it. Tasks is the
// reported task list as JSON (the agent protocol's TaskStatus, protojson).
type AppService struct {
	AppID                uuid.UUID
	DeploymentID         string
	PreviousDeploymentID string
	UpdateState          string
	UpdateMessage        string
	Desired              int32
	Tasks                []byte
	ReportedAt           time.Time
}

const appServiceColumns = `app_id, deployment_id, previous_deployment_id, update_state, update_message, desired,
	tasks, reported_at`

func scanAppService(row pgx.Row) (AppService, error) {
	var s AppService
	err := row.Scan(&s.AppID, &s.DeploymentID, &s.PreviousDeploymentID, &s.UpdateState, &s.UpdateMessage, &s.Desired,
		&s.Tasks, &s.ReportedAt)
	return s, mapErr(err)
}

// PutAppService stores the latest report of an app's service.
func (q *Queries) PutAppService(ctx context.Context, s AppService) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO app_services (app_id, deployment_id, previous_deployment_id, update_state, update_message, desired, tasks, reported_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now())
		ON CONFLICT (app_id) DO UPDATE SET deployment_id = $2, previous_deployment_id = $3, update_state = $4,
			update_message = $5, desired = $6, tasks = $7, reported_at = now()`,
		s.AppID, s.DeploymentID, s.PreviousDeploymentID, s.UpdateState, s.UpdateMessage, s.Desired, s.Tasks)
	if isForeignKeyViolation(err) {
		return nil // the app was deleted meanwhile
	}
	return mapErr(err)
}

// DropAppServicesExcept forgets the reported services of a cluster's apps that a complete
// report no longer lists (their services are gone).
func (q *Queries) DropAppServicesExcept(ctx context.Context, clusterID uuid.UUID, keep []uuid.UUID) error {
	_, err := q.db.Exec(ctx, `
		DELETE FROM app_services s USING apps a
		WHERE a.id = s.app_id AND a.cluster_id = $1 AND NOT (s.app_id = ANY($2))`, clusterID, keep)
	return mapErr(err)
}

// AppServiceOf returns the latest report of an app's service; ErrNotFound when none came.
func (q *Queries) AppServiceOf(ctx context.Context, appID uuid.UUID) (AppService, error) {
	return scanAppService(q.db.QueryRow(ctx, `SELECT `+appServiceColumns+` FROM app_services WHERE app_id = $1`, appID))
}

// AppServicesOf returns the latest reports of several apps' services.
func (q *Queries) AppServicesOf(ctx context.Context, appIDs []uuid.UUID) (map[uuid.UUID]AppService, error) {
	rows, err := q.db.Query(ctx, `SELECT `+appServiceColumns+` FROM app_services WHERE app_id = ANY($1)`, appIDs)
	list, err := collect(rows, err, scanAppService)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]AppService, len(list))
	for _, s := range list {
		out[s.AppID] = s
	}
	return out, nil
}

// AppMetric is one sample of one replica's resource use.
type AppMetric struct {
	AppID       uuid.UUID
	TaskID      string
	Slot        int32
	SampledAt   time.Time
	CPUPercent  float64
	MemoryBytes int64
	NetRxBytes  int64
	NetTxBytes  int64
}

// InsertAppMetrics stores samples; a repeated sample (same task and time) is ignored, and so
// are samples of apps that no longer exist.
func (q *Queries) InsertAppMetrics(ctx context.Context, ms []AppMetric) error {
	if len(ms) == 0 {
		return nil
	}
	var apps, tasks []string
	var slots []int32
	var at []time.Time
	var cpu []float64
	var mem, rx, tx []int64
	for _, m := range ms {
		apps, tasks, slots, at = append(apps, m.AppID.String()), append(tasks, m.TaskID), append(slots, m.Slot), append(at, m.SampledAt)
		cpu, mem, rx, tx = append(cpu, m.CPUPercent), append(mem, m.MemoryBytes), append(rx, m.NetRxBytes), append(tx, m.NetTxBytes)
	}
	_, err := q.db.Exec(ctx, `
		INSERT INTO app_metrics (app_id, task_id, slot, sampled_at, cpu_percent, memory_bytes, net_rx_bytes, net_tx_bytes)
		SELECT m.app_id, m.task_id, m.slot, m.sampled_at, m.cpu, m.mem, m.rx, m.tx
		FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::float8[], $6::bigint[], $7::bigint[], $8::bigint[])
			AS m(app_id, task_id, slot, sampled_at, cpu, mem, rx, tx)
		WHERE EXISTS (SELECT 1 FROM apps a WHERE a.id = m.app_id)
		ON CONFLICT DO NOTHING`, apps, tasks, slots, at, cpu, mem, rx, tx)
	return mapErr(err)
}

// AppMetrics returns an app's samples in [from, to), by replica slot and time.
func (q *Queries) AppMetrics(ctx context.Context, appID uuid.UUID, from, to time.Time) ([]AppMetric, error) {
	rows, err := q.db.Query(ctx, `
		SELECT app_id, task_id, slot, sampled_at, cpu_percent, memory_bytes, net_rx_bytes, net_tx_bytes
		FROM app_metrics WHERE app_id = $1 AND sampled_at >= $2 AND sampled_at < $3
		ORDER BY slot, sampled_at`, appID, from, to)
	return collect(rows, err, func(row pgx.Row) (AppMetric, error) {
		var m AppMetric
		err := row.Scan(&m.AppID, &m.TaskID, &m.Slot, &m.SampledAt, &m.CPUPercent, &m.MemoryBytes, &m.NetRxBytes, &m.NetTxBytes)
		return m, mapErr(err)
	})
}

// PruneAppMetrics deletes samples older than before.
func (q *Queries) PruneAppMetrics(ctx context.Context, before time.Time) error {
	_, err := q.db.Exec(ctx, `DELETE FROM app_metrics WHERE sampled_at < $1`, before)
	return mapErr(err)
}

// EdgeNodeSent is what an edge node was last sent.
type EdgeNodeSent struct {
	NodeID     uuid.UUID
	ConfigHash string
	Version    int64
}

// EdgeNodesSent returns what each of a cluster's edge nodes was last sent.
func (q *Queries) EdgeNodesSent(ctx context.Context, clusterID uuid.UUID) (map[uuid.UUID]EdgeNodeSent, error) {
	rows, err := q.db.Query(ctx, `SELECT e.node_id, e.config_hash, e.version FROM edge_nodes e
		JOIN nodes n ON n.id = e.node_id WHERE n.cluster_id = $1`, clusterID)
	list, err := collect(rows, err, func(row pgx.Row) (EdgeNodeSent, error) {
		var e EdgeNodeSent
		return e, mapErr(row.Scan(&e.NodeID, &e.ConfigHash, &e.Version))
	})
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]EdgeNodeSent, len(list))
	for _, e := range list {
		out[e.NodeID] = e
	}
	return out, nil
}

// PutEdgeNodeSent records what an edge node was sent.
func (q *Queries) PutEdgeNodeSent(ctx context.Context, e EdgeNodeSent) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO edge_nodes (node_id, config_hash, version) VALUES ($1, $2, $3)
		ON CONFLICT (node_id) DO UPDATE SET config_hash = $2, version = $3, sent_at = now()`,
		e.NodeID, e.ConfigHash, e.Version)
	return mapErr(err)
}

// LockEdgeSync serialises the edge configuration pushes of one cluster.
func (q *Queries) LockEdgeSync(ctx context.Context, clusterID uuid.UUID) error {
	_, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('edge:' || $1::text))`, clusterID)
	return mapErr(err)
}
