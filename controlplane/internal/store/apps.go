package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// App is one application of an organization. Spec is the AppSpec protobuf with its secret
// values sealed; the store never looks inside it.
type App struct {
	ID                 uuid.UUID
	OrganizationID     uuid.UUID
	Name               string
	PlanID             uuid.UUID
	ClusterID          uuid.UUID
	Spec               []byte
	Replicas           int32
	ReplicasBeforeStop int32
	Deleting           bool
	Suspended          bool
	CurrentReleaseID   *uuid.UUID
	ForceUpdate        int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
	// Joined for display.
	OrganizationSlug      string
	CurrentReleaseVersion int32
}

const appColumns = `a.id, a.organization_id, a.name, a.plan_id, a.cluster_id, a.spec, a.replicas,
	a.replicas_before_stop, a.deleting, a.suspended, a.current_release_id, a.force_update, a.created_at,
	a.updated_at, o.slug, coalesce(r.version, 0)`

const appFrom = ` FROM apps a JOIN organizations o ON o.id = a.organization_id
	LEFT JOIN releases r ON r.id = a.current_release_id `

func scanApp(row pgx.Row) (App, error) {
	var a App
	err := row.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.PlanID, &a.ClusterID, &a.Spec, &a.Replicas,
		&a.ReplicasBeforeStop, &a.Deleting, &a.Suspended, &a.CurrentReleaseID, &a.ForceUpdate, &a.CreatedAt,
		&a.UpdatedAt, &a.OrganizationSlug, &a.CurrentReleaseVersion)
	return a, mapErr(err)
}

// InsertApp creates an app. ErrConflict when the organization has an app of that name.
func (q *Queries) InsertApp(ctx context.Context, a App) (App, error) {
	_, err := q.db.Exec(ctx, `
		INSERT INTO apps (id, organization_id, name, plan_id, cluster_id, spec, replicas, replicas_before_stop)
		VALUES ($1, $2, $3, $4, $5, $6, $7, greatest($7, 1))`,
		a.ID, a.OrganizationID, a.Name, a.PlanID, a.ClusterID, a.Spec, a.Replicas)
	if err != nil {
		return App{}, mapErr(err)
	}
	return q.App(ctx, a.OrganizationID, a.ID)
}

// App returns an organization's app.
func (q *Queries) App(ctx context.Context, orgID, appID uuid.UUID) (App, error) {
	return scanApp(q.db.QueryRow(ctx, `SELECT `+appColumns+appFrom+`WHERE a.organization_id = $1 AND a.id = $2`, orgID, appID))
}

// LockApp returns an organization's app, locked until the transaction ends: changes to one
// app (deploys, scaling, deletion) take turns.
func (q *Queries) LockApp(ctx context.Context, orgID, appID uuid.UUID) (App, error) {
	return scanApp(q.db.QueryRow(ctx, `SELECT `+appColumns+appFrom+`WHERE a.organization_id = $1 AND a.id = $2
		FOR UPDATE OF a`, orgID, appID))
}

// AppByID returns an app whatever its organization: for background work, never for callers.
func (q *Queries) AppByID(ctx context.Context, appID uuid.UUID) (App, error) {
	return scanApp(q.db.QueryRow(ctx, `SELECT `+appColumns+appFrom+`WHERE a.id = $1`, appID))
}

// Apps lists an organization's apps by name.
func (q *Queries) Apps(ctx context.Context, orgID uuid.UUID) ([]App, error) {
	rows, err := q.db.Query(ctx, `SELECT `+appColumns+appFrom+`WHERE a.organization_id = $1 ORDER BY a.name`, orgID)
	return collect(rows, err, scanApp)
}

// AppsInCluster lists the apps placed on a cluster (edge routes are made from them).
func (q *Queries) AppsInCluster(ctx context.Context, clusterID uuid.UUID) ([]App, error) {
	rows, err := q.db.Query(ctx, `SELECT `+appColumns+appFrom+`WHERE a.cluster_id = $1 ORDER BY a.id`, clusterID)
	return collect(rows, err, scanApp)
}

// AppsPlacedOn says which of the apps are placed on the cluster.
func (q *Queries) AppsPlacedOn(ctx context.Context, clusterID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.db.Query(ctx, `SELECT id FROM apps WHERE cluster_id = $1 AND id = ANY($2)`, clusterID, ids)
	list, err := collect(rows, err, func(row pgx.Row) (uuid.UUID, error) {
		var id uuid.UUID
		return id, mapErr(row.Scan(&id))
	})
	for _, id := range list {
		out[id] = true
	}
	return out, err
}

// CountApps counts an organization's apps on a plan.
func (q *Queries) CountApps(ctx context.Context, orgID, planID uuid.UUID) (int32, error) {
	var n int32
	err := q.db.QueryRow(ctx, `SELECT count(*) FROM apps WHERE organization_id = $1 AND plan_id = $2`, orgID, planID).Scan(&n)
	return n, mapErr(err)
}

// UpdateApp stores an app's spec, plan, replicas, release and restart counter.
func (q *Queries) UpdateApp(ctx context.Context, a App) error {
	_, err := q.db.Exec(ctx, `
		UPDATE apps SET spec = $2, plan_id = $3, replicas = $4, replicas_before_stop = $5, current_release_id = $6,
			force_update = $7, deleting = $8, suspended = $9, updated_at = now()
		WHERE id = $1`, a.ID, a.Spec, a.PlanID, a.Replicas, a.ReplicasBeforeStop, a.CurrentReleaseID, a.ForceUpdate,
		a.Deleting, a.Suspended)
	return mapErr(err)
}

// DeleteApp deletes an app's row and everything that hangs off it.
func (q *Queries) DeleteApp(ctx context.Context, appID uuid.UUID) error {
	_, err := q.db.Exec(ctx, `DELETE FROM apps WHERE id = $1`, appID)
	return mapErr(err)
}

// ClusterCapacity is what a cluster has and what its apps have reserved.
type ClusterCapacity struct {
	ClusterID               uuid.UUID
	Name                    string
	DedicatedOrganizationID *uuid.UUID
	// CPUMillis and MemoryMiB add up the cluster's ready, active nodes.
	CPUMillis, MemoryMiB int64
	// Reserved* add up replicas × plan size of the cluster's apps.
	ReservedCPUMillis, ReservedMemoryMiB int64
}

// ClusterCapacities lists every active cluster with its capacity and reservations.
func (q *Queries) ClusterCapacities(ctx context.Context) ([]ClusterCapacity, error) {
	rows, err := q.db.Query(ctx, `
		SELECT c.id, c.name, c.dedicated_organization_id,
			coalesce((SELECT sum(n.cpus) * 1000 FROM nodes n WHERE n.cluster_id = c.id AND n.state = 'ready'
				AND n.availability IN ('', 'active')), 0)::bigint,
			coalesce((SELECT sum(n.memory_bytes) / 1048576 FROM nodes n WHERE n.cluster_id = c.id AND n.state = 'ready'
				AND n.availability IN ('', 'active')), 0)::bigint,
			coalesce((SELECT sum(a.replicas * p.cpu_millis) FROM apps a JOIN plans p ON p.id = a.plan_id
				WHERE a.cluster_id = c.id), 0)::bigint,
			coalesce((SELECT sum(a.replicas * p.memory_mib) FROM apps a JOIN plans p ON p.id = a.plan_id
				WHERE a.cluster_id = c.id), 0)::bigint
		FROM clusters c WHERE c.state = 'active' ORDER BY c.name`)
	return collect(rows, err, func(row pgx.Row) (ClusterCapacity, error) {
		var c ClusterCapacity
		err := row.Scan(&c.ClusterID, &c.Name, &c.DedicatedOrganizationID, &c.CPUMillis, &c.MemoryMiB,
			&c.ReservedCPUMillis, &c.ReservedMemoryMiB)
		return c, mapErr(err)
	})
}

// LockClusterCapacity serialises placement decisions on a cluster, so two apps cannot both
// take its last room.
func (q *Queries) LockClusterCapacity(ctx context.Context, clusterID uuid.UUID) error {
	_, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('capacity:' || $1::text))`, clusterID)
	return mapErr(err)
}

// Release is an immutable snapshot of what an app runs.
type Release struct {
	ID             uuid.UUID
	AppID          uuid.UUID
	OrganizationID uuid.UUID
	Version        int32
	Image          string
	ImageDigest    string
	Spec           []byte
	PlanID         uuid.UUID
	Description    string
	CreatedBy      *uuid.UUID
	CreatedByEmail string
	CreatedAt      time.Time
}

const releaseColumns = `r.id, r.app_id, r.organization_id, r.version, r.image, r.image_digest, r.spec, r.plan_id,
	r.description, r.created_by, coalesce(u.email, ''), r.created_at`

const releaseFrom = ` FROM releases r LEFT JOIN users u ON u.id = r.created_by `

func scanRelease(row pgx.Row) (Release, error) {
	var r Release
	err := row.Scan(&r.ID, &r.AppID, &r.OrganizationID, &r.Version, &r.Image, &r.ImageDigest, &r.Spec, &r.PlanID,
		&r.Description, &r.CreatedBy, &r.CreatedByEmail, &r.CreatedAt)
	return r, mapErr(err)
}

// SetReleaseImageDigest records the digest the manager pinned a release's image to, once: a
// release's digest never changes after it is known (rollbacks to it run the same image).
func (q *Queries) SetReleaseImageDigest(ctx context.Context, id uuid.UUID, digest string) error {
	_, err := q.db.Exec(ctx, `UPDATE releases SET image_digest = $2 WHERE id = $1 AND image_digest = ''`, id, digest)
	return mapErr(err)
}

// InsertRelease adds the app's next release (version = the highest so far + 1). The caller
// holds the app's lock.
func (q *Queries) InsertRelease(ctx context.Context, r Release) (Release, error) {
	var id uuid.UUID
	err := q.db.QueryRow(ctx, `
		INSERT INTO releases (app_id, organization_id, version, image, image_digest, spec, plan_id, description, created_by)
		VALUES ($1, $2, coalesce((SELECT max(version) FROM releases WHERE app_id = $1), 0) + 1, $3, $4, $5, $6, $7, $8)
		RETURNING id`, r.AppID, r.OrganizationID, r.Image, r.ImageDigest, r.Spec, r.PlanID, r.Description, r.CreatedBy).Scan(&id)
	if err != nil {
		return Release{}, mapErr(err)
	}
	return q.Release(ctx, r.OrganizationID, id)
}

// Release returns one of an organization's releases.
func (q *Queries) Release(ctx context.Context, orgID, id uuid.UUID) (Release, error) {
	return scanRelease(q.db.QueryRow(ctx, `SELECT `+releaseColumns+releaseFrom+`WHERE r.organization_id = $1 AND r.id = $2`, orgID, id))
}

// Releases lists an app's releases, newest first.
func (q *Queries) Releases(ctx context.Context, orgID, appID uuid.UUID) ([]Release, error) {
	rows, err := q.db.Query(ctx, `SELECT `+releaseColumns+releaseFrom+`WHERE r.organization_id = $1 AND r.app_id = $2
		ORDER BY r.version DESC`, orgID, appID)
	return collect(rows, err, scanRelease)
}
