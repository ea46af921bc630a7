package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Domain is a custom hostname of an app.
type Domain struct {
	ID               uuid.UUID
	AppID            uuid.UUID
	OrganizationID   uuid.UUID
	Hostname         string
	Method           int16
	Token            string
	VerifiedAt       *time.Time
	Primary          bool
	CertificateState string
	CertPEM          string
	KeySealed        string
	CertExpiresAt    *time.Time
	Error            string
	CreatedAt        time.Time
	// ClusterID is the app's cluster (joined).
	ClusterID uuid.UUID
}

const domainColumns = `d.id, d.app_id, d.organization_id, d.hostname, d.method, d.token, d.verified_at, d.is_primary,
	d.certificate_state, d.cert_pem, d.key_sealed, d.cert_expires_at, d.error, d.created_at, a.cluster_id`

const domainFrom = ` FROM domains d JOIN apps a ON a.id = d.app_id `

func scanDomain(row pgx.Row) (Domain, error) {
	var d Domain
	err := row.Scan(&d.ID, &d.AppID, &d.OrganizationID, &d.Hostname, &d.Method, &d.Token, &d.VerifiedAt, &d.Primary,
		&d.CertificateState, &d.CertPEM, &d.KeySealed, &d.CertExpiresAt, &d.Error, &d.CreatedAt, &d.ClusterID)
	return d, mapErr(err)
}

// InsertDomain adds a domain to an app. ErrConflict when any app has the hostname.
func (q *Queries) InsertDomain(ctx context.Context, d Domain) (Domain, error) {
	var id uuid.UUID
	err := q.db.QueryRow(ctx, `INSERT INTO domains (app_id, organization_id, hostname, method, token)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, d.AppID, d.OrganizationID, d.Hostname, d.Method, d.Token).Scan(&id)
	if err != nil {
		return Domain{}, mapErr(err)
	}
	return q.Domain(ctx, d.OrganizationID, id)
}

// Domain returns one of an organization's domains.
func (q *Queries) Domain(ctx context.Context, orgID, id uuid.UUID) (Domain, error) {
	return scanDomain(q.db.QueryRow(ctx, `SELECT `+domainColumns+domainFrom+`WHERE d.organization_id = $1 AND d.id = $2`, orgID, id))
}

// DomainByID returns a domain whatever its organization: for background work.
func (q *Queries) DomainByID(ctx context.Context, id uuid.UUID) (Domain, error) {
	return scanDomain(q.db.QueryRow(ctx, `SELECT `+domainColumns+domainFrom+`WHERE d.id = $1`, id))
}

// AppDomains lists an app's domains by hostname.
func (q *Queries) AppDomains(ctx context.Context, orgID, appID uuid.UUID) ([]Domain, error) {
	rows, err := q.db.Query(ctx, `SELECT `+domainColumns+domainFrom+`WHERE d.organization_id = $1 AND d.app_id = $2
		ORDER BY d.hostname`, orgID, appID)
	return collect(rows, err, scanDomain)
}

// ClusterDomains lists the domains of a cluster's apps.
func (q *Queries) ClusterDomains(ctx context.Context, clusterID uuid.UUID) ([]Domain, error) {
	rows, err := q.db.Query(ctx, `SELECT `+domainColumns+domainFrom+`WHERE a.cluster_id = $1 ORDER BY d.hostname`, clusterID)
	return collect(rows, err, scanDomain)
}

// DomainsDueForCertificate lists verified domains with no certificate, or one expiring
// before renewBefore, whose last attempt (if it failed) is older than retryAfter.
func (q *Queries) DomainsDueForCertificate(ctx context.Context, renewBefore time.Time) ([]Domain, error) {
	rows, err := q.db.Query(ctx, `SELECT `+domainColumns+domainFrom+`
		WHERE d.verified_at IS NOT NULL AND d.certificate_state <> 'pending'
			AND (d.cert_expires_at IS NULL OR d.cert_expires_at < $1)
		ORDER BY d.created_at`, renewBefore)
	return collect(rows, err, scanDomain)
}

// SetDomainVerified marks a domain's ownership proven.
func (q *Queries) SetDomainVerified(ctx context.Context, id uuid.UUID) error {
	_, err := q.db.Exec(ctx, `UPDATE domains SET verified_at = coalesce(verified_at, now()), error = '' WHERE id = $1`, id)
	return mapErr(err)
}

// SetDomainError records why the last verification or certificate attempt failed.
func (q *Queries) SetDomainError(ctx context.Context, id uuid.UUID, msg string) error {
	_, err := q.db.Exec(ctx, `UPDATE domains SET error = $2 WHERE id = $1`, id, msg)
	return mapErr(err)
}

// SetDomainCertificateState moves a domain's certificate along (pending, failed), with a message.
func (q *Queries) SetDomainCertificateState(ctx context.Context, id uuid.UUID, state, msg string) error {
	_, err := q.db.Exec(ctx, `UPDATE domains SET certificate_state = $2, error = $3 WHERE id = $1`, id, state, msg)
	return mapErr(err)
}

// SetDomainCertificate stores an issued certificate and its sealed key.
func (q *Queries) SetDomainCertificate(ctx context.Context, id uuid.UUID, certPEM, keySealed string, expires time.Time) error {
	_, err := q.db.Exec(ctx, `UPDATE domains SET certificate_state = 'issued', cert_pem = $2, key_sealed = $3,
		cert_expires_at = $4, error = '' WHERE id = $1`, id, certPEM, keySealed, expires)
	return mapErr(err)
}

// SetPrimaryDomain makes a domain its app's only primary one.
func (q *Queries) SetPrimaryDomain(ctx context.Context, appID, id uuid.UUID) error {
	if _, err := q.db.Exec(ctx, `UPDATE domains SET is_primary = false WHERE app_id = $1 AND is_primary`, appID); err != nil {
		return mapErr(err)
	}
	_, err := q.db.Exec(ctx, `UPDATE domains SET is_primary = true WHERE app_id = $1 AND id = $2`, appID, id)
	return mapErr(err)
}

// DeleteDomain removes a domain.
func (q *Queries) DeleteDomain(ctx context.Context, id uuid.UUID) error {
	_, err := q.db.Exec(ctx, `DELETE FROM domains WHERE id = $1`, id)
	return mapErr(err)
}

// ACMEChallenge is an HTTP-01 answer the edges serve while an order is open.
type ACMEChallenge struct {
	Token, KeyAuth, Hostname string
}

// PutACMEChallenge stores an answer to serve.
func (q *Queries) PutACMEChallenge(ctx context.Context, c ACMEChallenge) error {
	_, err := q.db.Exec(ctx, `INSERT INTO acme_challenges (token, key_auth, hostname) VALUES ($1, $2, $3)
		ON CONFLICT (token) DO UPDATE SET key_auth = $2, hostname = $3`, c.Token, c.KeyAuth, c.Hostname)
	return mapErr(err)
}

// DeleteACMEChallenge stops serving an answer.
func (q *Queries) DeleteACMEChallenge(ctx context.Context, token string) error {
	_, err := q.db.Exec(ctx, `DELETE FROM acme_challenges WHERE token = $1`, token)
	return mapErr(err)
}

// ACMEChallenges lists every answer to serve.
func (q *Queries) ACMEChallenges(ctx context.Context) ([]ACMEChallenge, error) {
	rows, err := q.db.Query(ctx, `SELECT token, key_auth, hostname FROM acme_challenges ORDER BY token`)
	return collect(rows, err, func(row pgx.Row) (ACMEChallenge, error) {
		var c ACMEChallenge
		return c, mapErr(row.Scan(&c.Token, &c.KeyAuth, &c.Hostname))
	})
}

// ACMEAccount is the control plane's account at one ACME directory.
type ACMEAccount struct {
	DirectoryURL string
	Email        string
	KeySealed    string
	Registration []byte
}

// ACMEAccountFor returns the account at a directory; ErrNotFound when there is none yet.
func (q *Queries) ACMEAccountFor(ctx context.Context, directoryURL string) (ACMEAccount, error) {
	var a ACMEAccount
	err := q.db.QueryRow(ctx, `SELECT directory_url, email, key_sealed, registration FROM acme_accounts
		WHERE directory_url = $1`, directoryURL).Scan(&a.DirectoryURL, &a.Email, &a.KeySealed, &a.Registration)
	return a, mapErr(err)
}

// PutACMEAccount stores the account at a directory.
func (q *Queries) PutACMEAccount(ctx context.Context, a ACMEAccount) error {
	_, err := q.db.Exec(ctx, `INSERT INTO acme_accounts (directory_url, email, key_sealed, registration)
		VALUES ($1, $2, $3, $4) ON CONFLICT (directory_url) DO UPDATE SET email = $2, key_sealed = $3, registration = $4`,
		a.DirectoryURL, a.Email, a.KeySealed, a.Registration)
	return mapErr(err)
}
