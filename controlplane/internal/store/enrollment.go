package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnrollmentToken is a ticket for nodes to join a cluster; only its hash is kept.
type EnrollmentToken struct {
	ID             uuid.UUID
	ClusterID      uuid.UUID
	Role           int16
	Labels         map[string]string
	UsageLimit     int
	UsageCount     int
	Description    string
	CreatedByEmail string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	RevokedAt      *time.Time
}

const enrollmentTokenColumns = `t.id, t.cluster_id, t.role, t.labels, t.usage_limit, t.usage_count, t.description,
	coalesce(u.email, ''), t.created_at, t.expires_at, t.revoked_at`

func scanEnrollmentToken(row interface{ Scan(...any) error }) (EnrollmentToken, error) {
	var t EnrollmentToken
	var labels []byte
	err := row.Scan(&t.ID, &t.ClusterID, &t.Role, &labels, &t.UsageLimit, &t.UsageCount, &t.Description,
		&t.CreatedByEmail, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
	if err != nil {
		return t, mapErr(err)
	}
	return t, json.Unmarshal(labels, &t.Labels)
}

// CreateEnrollmentToken stores a token's hash.
func (q *Queries) CreateEnrollmentToken(ctx context.Context, t EnrollmentToken, hash []byte, createdBy uuid.UUID) (EnrollmentToken, error) {
	labels, err := json.Marshal(t.Labels)
	if err != nil {
		return t, err
	}
	var id uuid.UUID
	err = q.db.QueryRow(ctx, `
		INSERT INTO enrollment_tokens (cluster_id, token_hash, role, labels, usage_limit, description, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		t.ClusterID, hash, t.Role, labels, t.UsageLimit, t.Description, createdBy, t.ExpiresAt).Scan(&id)
	if err != nil {
		if isForeignKeyViolation(err) {
			return t, ErrNotFound
		}
		return t, mapErr(err)
	}
	return q.enrollmentToken(ctx, `t.id = $1`, id)
}

func (q *Queries) enrollmentToken(ctx context.Context, where string, arg any) (EnrollmentToken, error) {
	return scanEnrollmentToken(q.db.QueryRow(ctx, `SELECT `+enrollmentTokenColumns+`
		FROM enrollment_tokens t LEFT JOIN users u ON u.id = t.created_by WHERE `+where, arg))
}

// EnrollmentTokens lists a cluster's tokens, newest first.
func (q *Queries) EnrollmentTokens(ctx context.Context, clusterID uuid.UUID) ([]EnrollmentToken, error) {
	rows, err := q.db.Query(ctx, `SELECT `+enrollmentTokenColumns+`
		FROM enrollment_tokens t LEFT JOIN users u ON u.id = t.created_by
		WHERE t.cluster_id = $1 ORDER BY t.created_at DESC LIMIT 200`, clusterID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []EnrollmentToken
	for rows.Next() {
		t, err := scanEnrollmentToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

// RevokeEnrollmentToken revokes a token; ErrNotFound if unknown or revoked already.
func (q *Queries) RevokeEnrollmentToken(ctx context.Context, id uuid.UUID) (EnrollmentToken, error) {
	tag, err := q.db.Exec(ctx, `UPDATE enrollment_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return EnrollmentToken{}, mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return EnrollmentToken{}, ErrNotFound
	}
	return q.enrollmentToken(ctx, `t.id = $1`, id)
}

// LockEnrollmentToken finds a token by hash and locks it for the enrollment transaction, so
// two nodes racing for the last use cannot both get it.
func (q *Queries) LockEnrollmentToken(ctx context.Context, hash []byte) (EnrollmentToken, error) {
	var id uuid.UUID
	if err := q.db.QueryRow(ctx, `SELECT id FROM enrollment_tokens WHERE token_hash = $1 FOR UPDATE`, hash).Scan(&id); err != nil {
		return EnrollmentToken{}, mapErr(err)
	}
	return q.enrollmentToken(ctx, `t.id = $1`, id)
}

// UseEnrollmentToken counts one use of a token.
func (q *Queries) UseEnrollmentToken(ctx context.Context, id uuid.UUID) error {
	_, err := q.db.Exec(ctx, `UPDATE enrollment_tokens SET usage_count = usage_count + 1 WHERE id = $1`, id)
	return mapErr(err)
}

// NewNode is what enrollment records about a node.
type NewNode struct {
	ID                uuid.UUID
	ClusterID         uuid.UUID
	TokenID           uuid.UUID
	Role              int16
	Labels            map[string]string
	Hostname          string
	AdvertiseAddr     string
	OS, Kernel, Arch  string
	CPUs              int
	MemoryBytes       int64
	DockerVersion     string
	AgentVersion      string
	OverlayEncryption bool
}

// InsertNode records an enrolled node.
func (q *Queries) InsertNode(ctx context.Context, n NewNode) error {
	labels, err := json.Marshal(n.Labels)
	if err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `
		INSERT INTO nodes (id, cluster_id, enrollment_token_id, role, labels, hostname, advertise_addr, os, kernel,
			arch, cpus, memory_bytes, docker_version, agent_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		n.ID, n.ClusterID, n.TokenID, n.Role, labels, n.Hostname, n.AdvertiseAddr, n.OS, n.Kernel, n.Arch,
		n.CPUs, n.MemoryBytes, n.DockerVersion, n.AgentVersion)
	return mapErr(err)
}

// NodeEnrollment is what a node needs to know about itself after enrolling or renewing.
type NodeEnrollment struct {
	ID        uuid.UUID
	ClusterID uuid.UUID
	Role      int16
	Labels    map[string]string
	RemovedAt *time.Time
}

// NodeEnrollmentByID returns a node's enrollment facts.
func (q *Queries) NodeEnrollmentByID(ctx context.Context, id uuid.UUID) (NodeEnrollment, error) {
	var n NodeEnrollment
	var labels []byte
	err := q.db.QueryRow(ctx, `SELECT id, cluster_id, role, labels, removed_at FROM nodes WHERE id = $1`, id).
		Scan(&n.ID, &n.ClusterID, &n.Role, &labels, &n.RemovedAt)
	if err != nil {
		return n, mapErr(err)
	}
	return n, json.Unmarshal(labels, &n.Labels)
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
