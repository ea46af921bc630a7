package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Role is a member's role in an organization; the numbers are the API's Role enum.
type Role int16

// Roles, ordered: each may do everything the lower ones may.
const (
	RoleViewer Role = 1
	RoleMember Role = 2
	RoleAdmin  Role = 3
	RoleOwner  Role = 4
)

// String names the role as the API and the activity log spell it.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleMember:
		return "member"
	case RoleAdmin:
		return "admin"
	case RoleOwner:
		return "owner"
	}
	return "none"
}

// SessionPrincipal is who an access token speaks for.
type SessionPrincipal struct {
	UserID        uuid.UUID
	Email         string
	PlatformAdmin bool
	SessionID     uuid.UUID
}

// TokenPrincipal is who an API token speaks for: its creator, limited to one organization and
// to the lower of the token's role and the creator's current role there.
type TokenPrincipal struct {
	TokenID        uuid.UUID
	OrganizationID uuid.UUID
	Role           Role
	UserID         uuid.UUID
	Email          string
}

// SessionByAccessToken finds the live session an access token belongs to. Expired tokens,
// revoked or expired sessions and disabled users find nothing.
func (q *Queries) SessionByAccessToken(ctx context.Context, tokenHash []byte) (SessionPrincipal, error) {
	var p SessionPrincipal
	err := q.db.QueryRow(ctx, `
		SELECT u.id, u.email, u.platform_admin, s.id
		FROM access_tokens a
		JOIN sessions s ON s.id = a.session_id
		JOIN users u ON u.id = s.user_id
		WHERE a.token_hash = $1 AND a.expires_at > now()
		  AND s.revoked_at IS NULL AND s.expires_at > now()
		  AND u.disabled_at IS NULL`, tokenHash).Scan(&p.UserID, &p.Email, &p.PlatformAdmin, &p.SessionID)
	return p, mapErr(err)
}

// SessionMember is who an access token speaks for together with that user's role in one
// organization: what an organization-scoped RPC needs, in one round trip.
type SessionMember struct {
	SessionPrincipal
	// Role is the user's role in the organization; zero when the user is not a member (or
	// the organization does not exist).
	Role Role
}

// SessionMemberByAccessToken is SessionByAccessToken and MembershipRole in one query: the live
// session an access token belongs to, and its user's role in orgID. ErrNotFound means the
// token finds no live session (as for SessionByAccessToken); a live session whose user is not
// a member of orgID has a zero Role.
func (q *Queries) SessionMemberByAccessToken(ctx context.Context, tokenHash []byte, orgID uuid.UUID) (SessionMember, error) {
	var p SessionMember
	var role *Role
	err := q.db.QueryRow(ctx, `
		SELECT u.id, u.email, u.platform_admin, s.id, m.role
		FROM access_tokens a
		JOIN sessions s ON s.id = a.session_id
		JOIN users u ON u.id = s.user_id
		LEFT JOIN memberships m ON m.organization_id = $2 AND m.user_id = u.id
		WHERE a.token_hash = $1 AND a.expires_at > now()
		  AND s.revoked_at IS NULL AND s.expires_at > now()
		  AND u.disabled_at IS NULL`, tokenHash, orgID).Scan(&p.UserID, &p.Email, &p.PlatformAdmin, &p.SessionID, &role)
	if role != nil {
		p.Role = *role
	}
	return p, mapErr(err)
}

// APITokenPrincipal finds the live API token with this hash and records its use (at most once
// a minute, to keep hot tokens from writing on every call). A token whose creator left the
// organization or was disabled finds nothing.
func (q *Queries) APITokenPrincipal(ctx context.Context, tokenHash []byte) (TokenPrincipal, error) {
	var p TokenPrincipal
	var lastUsed *time.Time
	err := q.db.QueryRow(ctx, `
		SELECT t.id, t.organization_id, LEAST(t.role, m.role), u.id, u.email, t.last_used_at
		FROM api_tokens t
		JOIN users u ON u.id = t.created_by
		JOIN memberships m ON m.organization_id = t.organization_id AND m.user_id = t.created_by
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL
		  AND (t.expires_at IS NULL OR t.expires_at > now())
		  AND u.disabled_at IS NULL`, tokenHash).Scan(&p.TokenID, &p.OrganizationID, &p.Role, &p.UserID, &p.Email, &lastUsed)
	if err != nil {
		return p, mapErr(err)
	}
	if lastUsed == nil || time.Since(*lastUsed) > time.Minute {
		if _, err := q.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`, p.TokenID); err != nil {
			return p, mapErr(err)
		}
	}
	return p, nil
}

// MembershipRole returns the user's role in the organization, or ErrNotFound when the user
// is not a member (or the organization does not exist).
func (q *Queries) MembershipRole(ctx context.Context, orgID, userID uuid.UUID) (Role, error) {
	var r Role
	err := q.db.QueryRow(ctx, `SELECT role FROM memberships WHERE organization_id = $1 AND user_id = $2`, orgID, userID).Scan(&r)
	return r, mapErr(err)
}
