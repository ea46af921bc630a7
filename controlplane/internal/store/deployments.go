package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Deployment states that end a deployment.
var finalDeploymentStates = []string{"succeeded", "failed", "rolled_back", "superseded"}

// DeploymentEvent is one step of a deployment.
type DeploymentEvent struct {
	State   string    `json:"state"`
	At      time.Time `json:"at"`
	Message string    `json:"message,omitempty"`
}

// Deployment applies one release to a cluster.
type Deployment struct {
	ID                uuid.UUID
	AppID             uuid.UUID
	OrganizationID    uuid.UUID
	ReleaseID         uuid.UUID
	ReleaseVersion    int32
	Kind              string
	State             string
	Message           string
	AutomaticRollback bool
	Replicas          int32
	NodeID            *uuid.UUID
	CommandSeq        int64
	Events            []DeploymentEvent
	CreatedBy         *uuid.UUID
	CreatedByEmail    string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	FinishedAt        *time.Time
}

// Finished says whether the deployment reached an end state.
func (d Deployment) Finished() bool { return d.FinishedAt != nil }

const deploymentColumns = `d.id, d.app_id, d.organization_id, d.release_id, r.version, d.kind, d.state, d.message,
	d.automatic_rollback, d.replicas, d.node_id, d.command_seq, d.events, d.created_by, coalesce(u.email, ''),
	d.created_at, d.updated_at, d.finished_at`

const deploymentFrom = ` FROM deployments d JOIN releases r ON r.id = d.release_id LEFT JOIN users u ON u.id = d.created_by `

func scanDeployment(row pgx.Row) (Deployment, error) {
	var d Deployment
	var events []byte
	err := row.Scan(&d.ID, &d.AppID, &d.OrganizationID, &d.ReleaseID, &d.ReleaseVersion, &d.Kind, &d.State, &d.Message,
		&d.AutomaticRollback, &d.Replicas, &d.NodeID, &d.CommandSeq, &events, &d.CreatedBy, &d.CreatedByEmail,
		&d.CreatedAt, &d.UpdatedAt, &d.FinishedAt)
	if err != nil {
		return d, mapErr(err)
	}
	return d, json.Unmarshal(events, &d.Events)
}

// InsertDeployment records a new pending deployment.
func (q *Queries) InsertDeployment(ctx context.Context, d Deployment) (Deployment, error) {
	events, err := json.Marshal([]DeploymentEvent{{State: "pending", At: time.Now().UTC(), Message: d.Message}})
	if err != nil {
		return Deployment{}, err
	}
	var id uuid.UUID
	err = q.db.QueryRow(ctx, `
		INSERT INTO deployments (app_id, organization_id, release_id, kind, replicas, message, events, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		d.AppID, d.OrganizationID, d.ReleaseID, d.Kind, d.Replicas, d.Message, events, d.CreatedBy).Scan(&id)
	if err != nil {
		return Deployment{}, mapErr(err)
	}
	return q.DeploymentByID(ctx, id)
}

// Deployment returns one of an organization's deployments.
func (q *Queries) Deployment(ctx context.Context, orgID, id uuid.UUID) (Deployment, error) {
	return scanDeployment(q.db.QueryRow(ctx, `SELECT `+deploymentColumns+deploymentFrom+
		`WHERE d.organization_id = $1 AND d.id = $2`, orgID, id))
}

// DeploymentByID returns a deployment whatever its organization: for background work.
func (q *Queries) DeploymentByID(ctx context.Context, id uuid.UUID) (Deployment, error) {
	return scanDeployment(q.db.QueryRow(ctx, `SELECT `+deploymentColumns+deploymentFrom+`WHERE d.id = $1`, id))
}

// LockDeployment returns a deployment locked until the transaction ends.
func (q *Queries) LockDeployment(ctx context.Context, id uuid.UUID) (Deployment, error) {
	return scanDeployment(q.db.QueryRow(ctx, `SELECT `+deploymentColumns+deploymentFrom+`WHERE d.id = $1 FOR UPDATE OF d`, id))
}

// Deployments lists an app's deployments, newest first, older than before (zero: from the
// newest), at most limit.
func (q *Queries) Deployments(ctx context.Context, orgID, appID uuid.UUID, before time.Time, limit int) ([]Deployment, error) {
	if before.IsZero() {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := q.db.Query(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE d.organization_id = $1 AND d.app_id = $2 AND d.created_at < $3
		ORDER BY d.created_at DESC LIMIT $4`, orgID, appID, before, limit)
	return collect(rows, err, scanDeployment)
}

// LatestDeployments returns the newest deployment of each of the given apps.
func (q *Queries) LatestDeployments(ctx context.Context, appIDs []uuid.UUID) (map[uuid.UUID]Deployment, error) {
	rows, err := q.db.Query(ctx, `SELECT DISTINCT ON (d.app_id) `+deploymentColumns+deploymentFrom+`
		WHERE d.app_id = ANY($1) ORDER BY d.app_id, d.created_at DESC`, appIDs)
	ds, err := collect(rows, err, scanDeployment)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Deployment, len(ds))
	for _, d := range ds {
		out[d.AppID] = d
	}
	return out, nil
}

// OpenDeployments lists an app's deployments that have not ended, oldest first.
func (q *Queries) OpenDeployments(ctx context.Context, appID uuid.UUID) ([]Deployment, error) {
	rows, err := q.db.Query(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE d.app_id = $1 AND d.finished_at IS NULL ORDER BY d.created_at`, appID)
	return collect(rows, err, scanDeployment)
}

// DeploymentStep is a change to a deployment's progress.
type DeploymentStep struct {
	State   string
	Message string
	// NodeID and CommandSeq, when NodeID is set, record the command now waited for.
	NodeID            *uuid.UUID
	CommandSeq        int64
	AutomaticRollback bool
}

// AdvanceDeployment moves a deployment to a state, appending an event when the state changes,
// and finishing it when the state is final.
func (q *Queries) AdvanceDeployment(ctx context.Context, id uuid.UUID, s DeploymentStep) (Deployment, error) {
	event, err := json.Marshal([]DeploymentEvent{{State: s.State, At: time.Now().UTC(), Message: s.Message}})
	if err != nil {
		return Deployment{}, err
	}
	_, err = q.db.Exec(ctx, `
		UPDATE deployments SET
			events = CASE WHEN state = $2 AND message = $3 THEN events ELSE events || $4::jsonb END,
			state = $2, message = $3,
			node_id = coalesce($5, node_id), command_seq = CASE WHEN $5::uuid IS NULL THEN command_seq ELSE $6 END,
			automatic_rollback = automatic_rollback OR $7,
			finished_at = CASE WHEN $2 = ANY($8) THEN coalesce(finished_at, now()) ELSE NULL END,
			updated_at = now()
		WHERE id = $1`, id, s.State, s.Message, event, s.NodeID, s.CommandSeq, s.AutomaticRollback, finalDeploymentStates)
	if err != nil {
		return Deployment{}, mapErr(err)
	}
	return q.DeploymentByID(ctx, id)
}

// LastSucceededDeployment returns the newest deployment of the app that succeeded and set
// its replicas (a suspension scales to 0 but leaves the app's replicas as they were);
// ErrNotFound when none did.
func (q *Queries) LastSucceededDeployment(ctx context.Context, appID uuid.UUID) (Deployment, error) {
	return scanDeployment(q.db.QueryRow(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE d.app_id = $1 AND d.state = 'succeeded' AND d.kind <> 'suspend'
		ORDER BY d.finished_at DESC LIMIT 1`, appID))
}
