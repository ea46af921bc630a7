package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Reasons a session ends, kept in sessions.revoke_reason.
const (
	RevokeLoggedOut          = "logged_out"
	RevokeRefreshTokenReused = "refresh_token_reused"
	RevokePasswordChanged    = "password_changed"
	RevokePasswordReset      = "password_reset"
)

// RefreshToken is a refresh token with what decides whether it may be traded for a new pair.
type RefreshToken struct {
	SessionID        uuid.UUID
	SessionExpiresAt time.Time
	UserID           uuid.UUID
	Email            string
	// Used means the token was traded before: presenting it again is a replay.
	Used bool
	// Live means the token is unexpired, its session neither revoked nor expired, and its
	// user not disabled. It is computed by Postgres, so the database's clock decides.
	Live bool
}

// LockRefreshToken finds a refresh token and locks its row until the transaction ends, so two
// trades of the same token are serialised: the second sees the first one's Used. Call it
// inside InTx.
func (q *Queries) LockRefreshToken(ctx context.Context, tokenHash []byte) (RefreshToken, error) {
	var t RefreshToken
	if q.tx == nil {
		return t, errors.New("lock refresh token: outside a transaction")
	}
	err := q.db.QueryRow(ctx, `
		SELECT r.session_id, s.expires_at, u.id, u.email, r.used_at IS NOT NULL,
			r.expires_at > now() AND s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL
		FROM refresh_tokens r
		JOIN sessions s ON s.id = r.session_id
		JOIN users u ON u.id = s.user_id
		WHERE r.token_hash = $1
		FOR UPDATE OF r`, tokenHash).Scan(&t.SessionID, &t.SessionExpiresAt, &t.UserID, &t.Email, &t.Used, &t.Live)
	return t, mapErr(err)
}

// MarkRefreshTokenUsed records that a refresh token was traded.
func (q *Queries) MarkRefreshTokenUsed(ctx context.Context, tokenHash []byte) error {
	_, err := q.db.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, tokenHash)
	return mapErr(err)
}

// RevokeSession ends a session, and with it every access and refresh token issued from it.
// It reports whether the session was live (false when it was already revoked).
func (q *Queries) RevokeSession(ctx context.Context, sessionID uuid.UUID, reason string) (bool, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE sessions SET revoked_at = now(), revoke_reason = $2
		WHERE id = $1 AND revoked_at IS NULL`, sessionID, reason)
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeUserSessions ends every live session of a user except the one with id except
// (uuid.Nil ends them all), and returns how many it ended.
func (q *Queries) RevokeUserSessions(ctx context.Context, userID, except uuid.UUID, reason string) (int64, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE sessions SET revoked_at = now(), revoke_reason = $3
		WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND expires_at > now()`, userID, except, reason)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

// SetPasswordHash sets a user's password hash and when it changed.
func (q *Queries) SetPasswordHash(ctx context.Context, userID uuid.UUID, hash string) error {
	tag, err := q.db.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1`, userID, hash)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ReplacePasswordHash sets a user's password hash only if it is still oldHash: a password
// checked against oldHash outside the transaction may not overwrite a change made meanwhile.
// ErrNotFound when the hash (or the user) changed.
func (q *Queries) ReplacePasswordHash(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error {
	tag, err := q.db.Exec(ctx, `
		UPDATE users SET password_hash = $3, password_changed_at = now()
		WHERE id = $1 AND password_hash = $2`, userID, oldHash, newHash)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CreatePasswordReset stores a reset token's hash for a user unless the user already has
// limit resets from the last hour, and reports whether it did. The user's row is locked first,
// so concurrent requests cannot both slip under the limit. Call it inside InTx.
func (q *Queries) CreatePasswordReset(ctx context.Context, userID uuid.UUID, tokenHash []byte, expiresAt time.Time, limit int) (bool, error) {
	if q.tx == nil {
		return false, errors.New("create password reset: outside a transaction")
	}
	if _, err := q.db.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return false, mapErr(err)
	}
	var recent int
	err := q.db.QueryRow(ctx, `
		SELECT count(*) FROM password_resets
		WHERE user_id = $1 AND created_at > now() - interval '1 hour'`, userID).Scan(&recent)
	if err != nil {
		return false, mapErr(err)
	}
	if recent >= limit {
		return false, nil
	}
	_, err = q.db.Exec(ctx, `INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash, userID, expiresAt)
	if err != nil {
		return false, mapErr(err)
	}
	return true, nil
}

// UsePasswordReset spends an unused, unexpired reset token, together with every other reset
// token of its user, and returns the user's id. The update is its own check, so of two
// concurrent uses only one finds the token. ErrNotFound when it is unknown, used or expired.
func (q *Queries) UsePasswordReset(ctx context.Context, tokenHash []byte) (uuid.UUID, error) {
	var userID uuid.UUID
	err := q.db.QueryRow(ctx, `
		UPDATE password_resets SET used_at = now()
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
		RETURNING user_id`, tokenHash).Scan(&userID)
	if err != nil {
		return userID, mapErr(err)
	}
	_, err = q.db.Exec(ctx, `UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, userID)
	return userID, mapErr(err)
}
