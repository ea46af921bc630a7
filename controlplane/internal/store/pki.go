package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// PlatformCA is the stored platform CA: its certificate and its private key sealed under the
// master key.
type PlatformCA struct {
	CertPEM   string
	KeySealed string
	Pin       string
}

// PlatformCA returns the platform CA, or ErrNotFound before the first start made one.
func (q *Queries) PlatformCA(ctx context.Context) (PlatformCA, error) {
	var ca PlatformCA
	err := q.db.QueryRow(ctx, `SELECT cert_pem, key_sealed, pin FROM platform_ca WHERE id = 1`).
		Scan(&ca.CertPEM, &ca.KeySealed, &ca.Pin)
	return ca, mapErr(err)
}

// InsertPlatformCA stores the platform CA unless one exists already (another replica may
// have made it first); it reports whether this one was stored.
func (q *Queries) InsertPlatformCA(ctx context.Context, ca PlatformCA) (bool, error) {
	tag, err := q.db.Exec(ctx, `INSERT INTO platform_ca (id, cert_pem, key_sealed, pin) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, ca.CertPEM, ca.KeySealed, ca.Pin)
	return tag.RowsAffected() == 1, mapErr(err)
}

// InsertNodeCertificate records a certificate issued to a node.
func (q *Queries) InsertNodeCertificate(ctx context.Context, serial string, nodeID uuid.UUID, expiresAt time.Time) error {
	_, err := q.db.Exec(ctx, `INSERT INTO node_certificates (serial, node_id, expires_at) VALUES ($1, $2, $3)`,
		serial, nodeID, expiresAt)
	return mapErr(err)
}

// NodeStandingChannel is the Postgres NOTIFY channel that announces that a node's
// certificates may no longer be good (revoked, or the node removed); the payload is the node
// id. Replicas that cache certificate standings drop the node's entries when they hear it.
const NodeStandingChannel = "skypanel_node_standing"

// CertificateStanding is what the agent listener checks on every request.
type CertificateStanding struct {
	NodeID uuid.UUID
	// ClusterID is the node's cluster.
	ClusterID   uuid.UUID
	Revoked     bool
	NodeRemoved bool
}

// CertificateStanding looks a node certificate up by serial; ErrNotFound for one the
// platform never issued.
func (q *Queries) CertificateStanding(ctx context.Context, serial string) (CertificateStanding, error) {
	var s CertificateStanding
	err := q.db.QueryRow(ctx, `
		SELECT c.node_id, n.cluster_id, c.revoked_at IS NOT NULL, n.removed_at IS NOT NULL
		FROM node_certificates c JOIN nodes n ON n.id = c.node_id
		WHERE c.serial = $1`, serial).Scan(&s.NodeID, &s.ClusterID, &s.Revoked, &s.NodeRemoved)
	return s, mapErr(err)
}

// RevokeNodeCertificates revokes every certificate of a node and announces it on
// NodeStandingChannel (on commit inside a transaction).
func (q *Queries) RevokeNodeCertificates(ctx context.Context, nodeID uuid.UUID) (int64, error) {
	tag, err := q.db.Exec(ctx, `UPDATE node_certificates SET revoked_at = now() WHERE node_id = $1 AND revoked_at IS NULL`, nodeID)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), q.notifyNodeStanding(ctx, nodeID)
}

// notifyNodeStanding announces on NodeStandingChannel that a node's certificates may no
// longer be good.
func (q *Queries) notifyNodeStanding(ctx context.Context, nodeID uuid.UUID) error {
	_, err := q.db.Exec(ctx, `SELECT pg_notify($1, $2)`, NodeStandingChannel, nodeID.String())
	return mapErr(err)
}

// CertificatesNoLongerGood returns those of serials whose certificate is revoked, whose node
// is removed, or that are gone: what a cache of good standings must drop. One query, however
// many serials.
func (q *Queries) CertificatesNoLongerGood(ctx context.Context, serials []string) ([]string, error) {
	if len(serials) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `
		SELECT s.serial FROM unnest($1::text[]) AS s(serial)
		LEFT JOIN node_certificates c ON c.serial = s.serial
		LEFT JOIN nodes n ON n.id = c.node_id
		WHERE c.serial IS NULL OR c.revoked_at IS NOT NULL OR n.id IS NULL OR n.removed_at IS NOT NULL`, serials)
	if err != nil {
		return nil, fmt.Errorf("certificates no longer good: %w", mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var serial string
		if err := rows.Scan(&serial); err != nil {
			return nil, fmt.Errorf("certificates no longer good: %w", mapErr(err))
		}
		out = append(out, serial)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("certificates no longer good: %w", mapErr(err))
	}
	return out, nil
}
