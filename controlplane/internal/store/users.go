package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// User is a person with a login.
type User struct {
	ID                uuid.UUID
	Email             string
	DisplayName       string
	PasswordHash      string
	PlatformAdmin     bool
	DisabledAt        *time.Time
	PasswordChangedAt time.Time
	CreatedAt         time.Time
}

const userColumns = `id, email, display_name, password_hash, platform_admin, disabled_at, password_changed_at, created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.PasswordHash, &u.PlatformAdmin, &u.DisabledAt,
		&u.PasswordChangedAt, &u.CreatedAt)
	return u, mapErr(err)
}

// NormalizeEmail is how emails are compared and stored: trimmed and lower-cased.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateUser inserts a user; ErrConflict when the email is taken.
func (q *Queries) CreateUser(ctx context.Context, email, displayName, passwordHash string, platformAdmin bool) (User, error) {
	return scanUser(q.db.QueryRow(ctx, `
		INSERT INTO users (email, display_name, password_hash, platform_admin)
		VALUES ($1, $2, $3, $4) RETURNING `+userColumns,
		NormalizeEmail(email), displayName, passwordHash, platformAdmin))
}

// UserByEmail finds a user by email (any case).
func (q *Queries) UserByEmail(ctx context.Context, email string) (User, error) {
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, NormalizeEmail(email)))
}

// UserByID finds a user by id.
func (q *Queries) UserByID(ctx context.Context, id uuid.UUID) (User, error) {
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// SetPlatformAdmin grants or revokes platform admin.
func (q *Queries) SetPlatformAdmin(ctx context.Context, id uuid.UUID, admin bool) (User, error) {
	return scanUser(q.db.QueryRow(ctx, `UPDATE users SET platform_admin = $2 WHERE id = $1 RETURNING `+userColumns, id, admin))
}
