package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// InvitationState is where an invitation is in its life, as the invitations table spells it.
type InvitationState string

// Invitation states.
const (
	InvitationPending  InvitationState = "pending"
	InvitationAccepted InvitationState = "accepted"
	InvitationDeclined InvitationState = "declined"
	InvitationRevoked  InvitationState = "revoked"
	InvitationExpired  InvitationState = "expired"
)

// Invitation asks someone, by email, to join an organization with a role.
type Invitation struct {
	ID               uuid.UUID
	OrganizationID   uuid.UUID
	OrganizationName string
	Email            string
	Role             Role
	// State is the effective state: a pending invitation past ExpiresAt reads as expired even
	// before ExpireInvitations marks it so.
	State          InvitationState
	InvitedBy      *uuid.UUID
	InvitedByEmail string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	RespondedAt    *time.Time
}

// invitationQuery selects invitations with their organization's name and the inviter's email;
// callers add the WHERE clause on i.
const invitationQuery = `
	SELECT i.id, i.organization_id, o.name, i.email, i.role,
		CASE WHEN i.state = 'pending' AND i.expires_at <= now() THEN 'expired' ELSE i.state END,
		i.invited_by, coalesce(u.email, ''), i.created_at, i.expires_at, i.responded_at
	FROM invitations i
	JOIN organizations o ON o.id = i.organization_id
	LEFT JOIN users u ON u.id = i.invited_by`

func scanInvitation(row interface{ Scan(...any) error }) (Invitation, error) {
	var i Invitation
	err := row.Scan(&i.ID, &i.OrganizationID, &i.OrganizationName, &i.Email, &i.Role, &i.State,
		&i.InvitedBy, &i.InvitedByEmail, &i.CreatedAt, &i.ExpiresAt, &i.RespondedAt)
	return i, mapErr(err)
}

// NewInvitation is what CreateInvitation stores.
type NewInvitation struct {
	OrganizationID uuid.UUID
	Email          string
	Role           Role
	TokenHash      []byte
	InvitedBy      uuid.UUID
	ExpiresAt      time.Time
}

// CreateInvitation stores a pending invitation; ErrConflict when the organization already has
// a pending invitation for the email.
func (q *Queries) CreateInvitation(ctx context.Context, n NewInvitation) (Invitation, error) {
	var id uuid.UUID
	err := q.db.QueryRow(ctx, `
		INSERT INTO invitations (organization_id, email, role, token_hash, invited_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		n.OrganizationID, NormalizeEmail(n.Email), n.Role, n.TokenHash, n.InvitedBy, n.ExpiresAt).Scan(&id)
	if err != nil {
		return Invitation{}, mapErr(err)
	}
	return q.InvitationByID(ctx, n.OrganizationID, id)
}

// ExpireInvitations marks the organization's pending invitations past their expiry as expired,
// which frees their emails for new invitations. It returns how many it marked.
func (q *Queries) ExpireInvitations(ctx context.Context, orgID uuid.UUID) (int64, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE invitations SET state = 'expired'
		WHERE organization_id = $1 AND state = 'pending' AND expires_at <= now()`, orgID)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

// CountPendingInvitations counts the organization's pending, unexpired invitations.
func (q *Queries) CountPendingInvitations(ctx context.Context, orgID uuid.UUID) (int, error) {
	var n int
	err := q.db.QueryRow(ctx, `
		SELECT count(*) FROM invitations
		WHERE organization_id = $1 AND state = 'pending' AND expires_at > now()`, orgID).Scan(&n)
	return n, mapErr(err)
}

// HasPendingInvitation reports whether the organization has a pending, unexpired invitation for
// the email.
func (q *Queries) HasPendingInvitation(ctx context.Context, orgID uuid.UUID, email string) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM invitations
			WHERE organization_id = $1 AND email = $2 AND state = 'pending' AND expires_at > now())`,
		orgID, NormalizeEmail(email)).Scan(&ok)
	return ok, mapErr(err)
}

// ListInvitations lists the organization's invitations, newest first, at most limit of them.
func (q *Queries) ListInvitations(ctx context.Context, orgID uuid.UUID, limit int) ([]Invitation, error) {
	rows, err := q.db.Query(ctx, invitationQuery+`
		WHERE i.organization_id = $1 ORDER BY i.created_at DESC, i.id LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, mapErr(rows.Err())
}

// InvitationByID returns one of the organization's invitations.
func (q *Queries) InvitationByID(ctx context.Context, orgID, id uuid.UUID) (Invitation, error) {
	return scanInvitation(q.db.QueryRow(ctx, invitationQuery+` WHERE i.organization_id = $1 AND i.id = $2`, orgID, id))
}

// LockInvitationByID returns one of the organization's invitations and locks it until the
// transaction ends.
func (q *Queries) LockInvitationByID(ctx context.Context, orgID, id uuid.UUID) (Invitation, error) {
	return scanInvitation(q.db.QueryRow(ctx, invitationQuery+`
		WHERE i.organization_id = $1 AND i.id = $2 FOR UPDATE OF i`, orgID, id))
}

// InvitationByToken returns the invitation a link's token hash belongs to. The token is the
// capability here: whoever holds the link may see the invitation, whatever its organization.
func (q *Queries) InvitationByToken(ctx context.Context, tokenHash []byte) (Invitation, error) {
	return scanInvitation(q.db.QueryRow(ctx, invitationQuery+` WHERE i.token_hash = $1`, tokenHash))
}

// LockInvitationByToken is InvitationByToken, locking the invitation until the transaction ends.
func (q *Queries) LockInvitationByToken(ctx context.Context, tokenHash []byte) (Invitation, error) {
	return scanInvitation(q.db.QueryRow(ctx, invitationQuery+` WHERE i.token_hash = $1 FOR UPDATE OF i`, tokenHash))
}

// RespondToInvitation moves one of the organization's pending invitations to state (accepted,
// declined or revoked), recording who did it (nil for an anonymous token holder) and when.
// ErrNotFound when the invitation is not pending any more.
func (q *Queries) RespondToInvitation(ctx context.Context, orgID, id uuid.UUID, state InvitationState, by *uuid.UUID) error {
	tag, err := q.db.Exec(ctx, `
		UPDATE invitations SET state = $3, responded_by = $4, responded_at = now()
		WHERE organization_id = $1 AND id = $2 AND state = 'pending'`, orgID, id, string(state), by)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
