package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Session is one sign-in: the family of every access and refresh token issued from it.
type Session struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	IP        string
	UserAgent string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// CreateSession starts a session for a user.
func (q *Queries) CreateSession(ctx context.Context, userID uuid.UUID, ip, userAgent string, expiresAt time.Time) (Session, error) {
	s := Session{UserID: userID, IP: ip, UserAgent: userAgent, ExpiresAt: expiresAt}
	err := q.db.QueryRow(ctx, `
		INSERT INTO sessions (user_id, ip, user_agent, expires_at) VALUES ($1, $2, $3, $4)
		RETURNING id, created_at`, userID, ip, userAgent, expiresAt).Scan(&s.ID, &s.CreatedAt)
	return s, mapErr(err)
}

// InsertAccessToken stores an access token's hash for a session.
func (q *Queries) InsertAccessToken(ctx context.Context, sessionID uuid.UUID, tokenHash []byte, expiresAt time.Time) error {
	_, err := q.db.Exec(ctx, `INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash, sessionID, expiresAt)
	return mapErr(err)
}

// InsertRefreshToken stores a refresh token's hash for a session.
func (q *Queries) InsertRefreshToken(ctx context.Context, sessionID uuid.UUID, tokenHash []byte, expiresAt time.Time) error {
	_, err := q.db.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		tokenHash, sessionID, expiresAt)
	return mapErr(err)
}
