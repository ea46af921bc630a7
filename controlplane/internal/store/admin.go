package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ListUsers lists users newest first, a page at a time, for platform admins. A non-empty query
// keeps the users whose email or display name contains it (any case; % and _ match
// themselves). cursor is the previous page's next page token; the returned one is "" on the
// last page. A cursor this store did not make is ErrInvalidPageToken.
func (q *Queries) ListUsers(ctx context.Context, query string, size int, cursor string) ([]User, string, error) {
	size = clampPageSize(size)
	var w whereBuilder
	if query != "" {
		pattern := "%" + escapeLikePattern(query) + "%"
		w.add("(email ILIKE $%[1]d OR display_name ILIKE $%[1]d)", pattern)
	}
	if cursor != "" {
		at, id, err := decodeTimeIDCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		w.conds = append(w.conds, "(created_at, id) < ("+w.arg("$%d", at)+", "+w.arg("$%d", id)+")")
	}
	limit := w.arg("$%d", size+1)
	rows, err := q.db.Query(ctx, `SELECT `+userColumns+` FROM users`+w.sql()+
		` ORDER BY created_at DESC, id DESC LIMIT `+limit, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", mapErr(err))
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list users: %w", mapErr(err))
	}
	next := ""
	if len(users) > size {
		users = users[:size]
		last := users[size-1]
		next = encodeTimeIDCursor(last.CreatedAt, last.ID)
	}
	return users, next, nil
}

// AdminOrganization is an organization as platform admins list it.
type AdminOrganization struct {
	ID   uuid.UUID
	Name string
	Slug string
	// OwnerEmail is "" only if the organization has no owner, which no committed state shows.
	OwnerEmail  string
	MemberCount int
	CreatedAt   time.Time
}

// ListOrganizations lists organizations newest first, a page at a time, for platform admins,
// with each one's owner and member count. A non-empty query keeps the organizations whose
// name or slug contains it (any case; % and _ match themselves). Paging works as in ListUsers.
func (q *Queries) ListOrganizations(ctx context.Context, query string, size int, cursor string) ([]AdminOrganization, string, error) {
	size = clampPageSize(size)
	var w whereBuilder
	ownerRole := w.arg("$%d", RoleOwner)
	if query != "" {
		pattern := "%" + escapeLikePattern(query) + "%"
		w.add("(o.name ILIKE $%[1]d OR o.slug ILIKE $%[1]d)", pattern)
	}
	if cursor != "" {
		at, id, err := decodeTimeIDCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		w.conds = append(w.conds, "(o.created_at, o.id) < ("+w.arg("$%d", at)+", "+w.arg("$%d", id)+")")
	}
	limit := w.arg("$%d", size+1)
	rows, err := q.db.Query(ctx, `
		SELECT o.id, o.name, o.slug, coalesce(owner.email, ''),
			(SELECT count(*) FROM memberships m WHERE m.organization_id = o.id), o.created_at
		FROM organizations o
		LEFT JOIN memberships om ON om.organization_id = o.id AND om.role = `+ownerRole+`
		LEFT JOIN users owner ON owner.id = om.user_id`+w.sql()+`
		ORDER BY o.created_at DESC, o.id DESC LIMIT `+limit, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list organizations: %w", mapErr(err))
	}
	defer rows.Close()
	var orgs []AdminOrganization
	for rows.Next() {
		var o AdminOrganization
		if err := rows.Scan(&o.ID, &o.Name, &o.Slug, &o.OwnerEmail, &o.MemberCount, &o.CreatedAt); err != nil {
			return nil, "", fmt.Errorf("list organizations: %w", mapErr(err))
		}
		orgs = append(orgs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list organizations: %w", mapErr(err))
	}
	next := ""
	if len(orgs) > size {
		orgs = orgs[:size]
		last := orgs[size-1]
		next = encodeTimeIDCursor(last.CreatedAt, last.ID)
	}
	return orgs, next, nil
}

// DisableUser disables a user and revokes every session of theirs in the same statement, so
// no access token outlives the change. Their API tokens stop too: APITokenPrincipal ignores
// tokens of disabled creators. Disabling a disabled user keeps the first disabled_at.
func (q *Queries) DisableUser(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(q.db.QueryRow(ctx, `
		WITH revoked AS (
			UPDATE sessions SET revoked_at = now(), revoke_reason = 'user disabled'
			WHERE user_id = $1 AND revoked_at IS NULL)
		UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1
		RETURNING `+userColumns, id))
	if err != nil {
		return User{}, fmt.Errorf("disable user: %w", err)
	}
	return u, nil
}

// EnableUser lets a disabled user sign in again. Their old sessions stay revoked; their API
// tokens work again if they are still live and their creator still a member.
func (q *Queries) EnableUser(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(q.db.QueryRow(ctx, `UPDATE users SET disabled_at = NULL WHERE id = $1 RETURNING `+userColumns, id))
	if err != nil {
		return User{}, fmt.Errorf("enable user: %w", err)
	}
	return u, nil
}

// LockActivePlatformAdmins returns the ids of the platform admins who are not disabled, and
// locks their rows for the rest of the transaction. Changes to admins take it first, so two
// admins demoting or disabling each other at the same time cannot both succeed and leave the
// platform without one: the second sees that its caller is no longer an admin. Call it
// inside InTx.
func (q *Queries) LockActivePlatformAdmins(ctx context.Context) ([]uuid.UUID, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id FROM users WHERE platform_admin AND disabled_at IS NULL ORDER BY id FOR UPDATE`)
	if err != nil {
		return nil, fmt.Errorf("lock platform admins: %w", mapErr(err))
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("lock platform admins: %w", mapErr(err))
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock platform admins: %w", mapErr(err))
	}
	return ids, nil
}
