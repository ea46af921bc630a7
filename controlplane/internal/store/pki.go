package store

import (
	"context"
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

// CertificateStanding is what the agent listener checks on every request.
type CertificateStanding struct {
	NodeID      uuid.UUID
	Revoked     bool
	NodeRemoved bool
}

// CertificateStanding looks a node certificate up by serial; ErrNotFound for one the
// platform never issued.
func (q *Queries) CertificateStanding(ctx context.Context, serial string) (CertificateStanding, error) {
	var s CertificateStanding
	err := q.db.QueryRow(ctx, `
		SELECT c.node_id, c.revoked_at IS NOT NULL, n.removed_at IS NOT NULL
		FROM node_certificates c JOIN nodes n ON n.id = c.node_id
		WHERE c.serial = $1`, serial).Scan(&s.NodeID, &s.Revoked, &s.NodeRemoved)
	return s, mapErr(err)
}

// RevokeNodeCertificates revokes every certificate of a node.
func (q *Queries) RevokeNodeCertificates(ctx context.Context, nodeID uuid.UUID) (int64, error) {
	tag, err := q.db.Exec(ctx, `UPDATE node_certificates SET revoked_at = now() WHERE node_id = $1 AND revoked_at IS NULL`, nodeID)
	return tag.RowsAffected(), mapErr(err)
}
