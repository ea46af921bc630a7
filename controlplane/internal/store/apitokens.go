package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// MaxLiveAPITokens caps an organization's live (unrevoked, unexpired) API tokens.
const MaxLiveAPITokens = 50

// ErrTooManyAPITokens means an organization already has MaxLiveAPITokens live tokens.
var ErrTooManyAPITokens = errors.New("too many api tokens")

// APIToken is an organization's long-lived credential. Only a hash of its secret is kept; the
// hash never leaves the store.
type APIToken struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Name           string
	// Role is the most the token may do; its creator's current role caps it further.
	Role           Role
	Prefix         string
	CreatedBy      uuid.UUID
	CreatedByEmail string
	CreatedAt      time.Time
	// ExpiresAt is nil for a token that does not expire.
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const apiTokenColumns = `t.id, t.organization_id, t.name, t.role, t.prefix, t.created_by, u.email,
	t.created_at, t.expires_at, t.last_used_at, t.revoked_at`

func scanAPIToken(row interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.Role, &t.Prefix, &t.CreatedBy, &t.CreatedByEmail,
		&t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	return t, mapErr(err)
}

// NewAPIToken is what CreateAPIToken stores.
type NewAPIToken struct {
	OrganizationID uuid.UUID
	Name           string
	Role           Role
	TokenHash      []byte
	Prefix         string
	CreatedBy      uuid.UUID
	// ExpiresAt is nil for a token that does not expire.
	ExpiresAt *time.Time
}

// CreateAPIToken stores a token unless the organization already has MaxLiveAPITokens live
// ones (ErrTooManyAPITokens). It locks the organization's row for the rest of the transaction,
// so concurrent creations cannot both slip under the cap; ErrNotFound when the organization
// does not exist. Call it inside InTx.
func (q *Queries) CreateAPIToken(ctx context.Context, nt NewAPIToken) (APIToken, error) {
	// FOR NO KEY UPDATE serialises token creation per organization without blocking the
	// foreign-key checks of membership or invitation inserts.
	var live int
	err := q.db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM api_tokens t
		        WHERE t.organization_id = o.id AND t.revoked_at IS NULL
		          AND (t.expires_at IS NULL OR t.expires_at > now()))
		FROM organizations o WHERE o.id = $1 FOR NO KEY UPDATE OF o`, nt.OrganizationID).Scan(&live)
	if err != nil {
		return APIToken{}, fmt.Errorf("create api token: %w", mapErr(err))
	}
	if live >= MaxLiveAPITokens {
		return APIToken{}, ErrTooManyAPITokens
	}
	t, err := scanAPIToken(q.db.QueryRow(ctx, `
		WITH t AS (
			INSERT INTO api_tokens (organization_id, name, role, token_hash, prefix, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			RETURNING *)
		SELECT `+apiTokenColumns+` FROM t JOIN users u ON u.id = t.created_by`,
		nt.OrganizationID, nt.Name, nt.Role, nt.TokenHash, nt.Prefix, nt.CreatedBy, nt.ExpiresAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("create api token: %w", err)
	}
	return t, nil
}

// ListAPITokens lists an organization's live tokens, newest first. Revoked and expired tokens
// are left out: they authenticate nothing and do not count towards MaxLiveAPITokens.
func (q *Queries) ListAPITokens(ctx context.Context, orgID uuid.UUID) ([]APIToken, error) {
	rows, err := q.db.Query(ctx, `
		SELECT `+apiTokenColumns+`
		FROM api_tokens t JOIN users u ON u.id = t.created_by
		WHERE t.organization_id = $1 AND t.revoked_at IS NULL
		  AND (t.expires_at IS NULL OR t.expires_at > now())
		ORDER BY t.created_at DESC, t.id DESC`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", mapErr(err))
	}
	defer rows.Close()
	var tokens []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens: %w", err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens: %w", mapErr(err))
	}
	return tokens, nil
}

// RevokeAPIToken revokes one of an organization's tokens at once. A token of another
// organization, or one already revoked, is ErrNotFound.
func (q *Queries) RevokeAPIToken(ctx context.Context, orgID, tokenID uuid.UUID) (APIToken, error) {
	t, err := scanAPIToken(q.db.QueryRow(ctx, `
		WITH t AS (
			UPDATE api_tokens SET revoked_at = now()
			WHERE id = $1 AND organization_id = $2 AND revoked_at IS NULL
			RETURNING *)
		SELECT `+apiTokenColumns+` FROM t JOIN users u ON u.id = t.created_by`, tokenID, orgID))
	if err != nil {
		return APIToken{}, fmt.Errorf("revoke api token: %w", err)
	}
	return t, nil
}
