package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Cluster is one Docker Swarm.
type Cluster struct {
	ID                      uuid.UUID
	Name                    string
	State                   string
	DedicatedOrganizationID *uuid.UUID
	OverlayEncryption       bool
	SwarmID                 string
	ManagerJoinTokenSealed  string
	WorkerJoinTokenSealed   string
	GossipKeySealed         string
	Error                   string
	CreatedAt               time.Time
	// Counts of the cluster's nodes that are not removed.
	Managers, Workers, Ready int
}

const clusterColumns = `c.id, c.name, c.state, c.dedicated_organization_id, c.overlay_encryption, c.swarm_id,
	c.manager_join_token_sealed, c.worker_join_token_sealed, c.gossip_key_sealed, c.error, c.created_at,
	(SELECT count(*) FROM nodes n WHERE n.cluster_id = c.id AND n.removed_at IS NULL AND n.role = 1),
	(SELECT count(*) FROM nodes n WHERE n.cluster_id = c.id AND n.removed_at IS NULL AND n.role = 2),
	(SELECT count(*) FROM nodes n WHERE n.cluster_id = c.id AND n.removed_at IS NULL AND n.state = 'ready')`

func scanCluster(row interface{ Scan(...any) error }) (Cluster, error) {
	var c Cluster
	err := row.Scan(&c.ID, &c.Name, &c.State, &c.DedicatedOrganizationID, &c.OverlayEncryption, &c.SwarmID,
		&c.ManagerJoinTokenSealed, &c.WorkerJoinTokenSealed, &c.GossipKeySealed, &c.Error, &c.CreatedAt,
		&c.Managers, &c.Workers, &c.Ready)
	return c, mapErr(err)
}

// CreateCluster inserts a cluster with a chosen id (its sealed secrets are bound to the id).
// ErrConflict when the name is taken; ErrNotFound when the dedicated organization is unknown.
func (q *Queries) CreateCluster(ctx context.Context, c Cluster) (Cluster, error) {
	_, err := q.db.Exec(ctx, `
		INSERT INTO clusters (id, name, dedicated_organization_id, overlay_encryption, gossip_key_sealed)
		VALUES ($1, $2, $3, $4, $5)`, c.ID, c.Name, c.DedicatedOrganizationID, c.OverlayEncryption, c.GossipKeySealed)
	if err != nil {
		if isForeignKeyViolation(err) {
			return Cluster{}, ErrNotFound
		}
		return Cluster{}, mapErr(err)
	}
	return q.ClusterByID(ctx, c.ID)
}

// ClusterByID returns one cluster.
func (q *Queries) ClusterByID(ctx context.Context, id uuid.UUID) (Cluster, error) {
	return scanCluster(q.db.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters c WHERE c.id = $1`, id))
}

// Clusters lists every cluster by name.
func (q *Queries) Clusters(ctx context.Context) ([]Cluster, error) {
	rows, err := q.db.Query(ctx, `SELECT `+clusterColumns+` FROM clusters c ORDER BY c.name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// DeleteCluster deletes a cluster whose nodes are all removed (their rows go with it).
// It reports false when live nodes remain.
func (q *Queries) DeleteCluster(ctx context.Context, id uuid.UUID) (bool, error) {
	var live int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE cluster_id = $1 AND removed_at IS NULL`, id).Scan(&live); err != nil {
		return false, mapErr(err)
	}
	if live > 0 {
		return false, nil
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM nodes WHERE cluster_id = $1`, id); err != nil {
		return false, mapErr(err)
	}
	tag, err := q.db.Exec(ctx, `DELETE FROM clusters WHERE id = $1`, id)
	if err != nil {
		return false, mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return false, ErrNotFound
	}
	return true, nil
}
