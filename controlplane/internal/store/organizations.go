package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Organization is a tenant.
type Organization struct {
	ID        uuid.UUID
	Name      string
	Slug      string
	CreatedAt time.Time
}

// MemberOrganization is an organization as one of its members sees it.
type MemberOrganization struct {
	Organization
	// Role is the member's role in it.
	Role        Role
	MemberCount int32
}

// Member is a user's membership in an organization.
type Member struct {
	OrganizationID uuid.UUID
	UserID         uuid.UUID
	Email          string
	DisplayName    string
	Role           Role
	JoinedAt       time.Time
}

const organizationColumns = `o.id, o.name, o.slug, o.created_at`

func scanOrganization(row interface{ Scan(...any) error }) (Organization, error) {
	var o Organization
	err := row.Scan(&o.ID, &o.Name, &o.Slug, &o.CreatedAt)
	return o, mapErr(err)
}

// memberOrganizationQuery selects an organization with the role of the member $1 and the
// number of members; callers add the WHERE clause.
const memberOrganizationQuery = `
	SELECT ` + organizationColumns + `, m.role,
		(SELECT count(*) FROM memberships c WHERE c.organization_id = o.id)::int
	FROM organizations o
	JOIN memberships m ON m.organization_id = o.id AND m.user_id = $1`

func scanMemberOrganization(row interface{ Scan(...any) error }) (MemberOrganization, error) {
	var o MemberOrganization
	err := row.Scan(&o.ID, &o.Name, &o.Slug, &o.CreatedAt, &o.Role, &o.MemberCount)
	return o, mapErr(err)
}

const memberColumns = `m.organization_id, m.user_id, u.email, u.display_name, m.role, m.created_at`

func scanMember(row interface{ Scan(...any) error }) (Member, error) {
	var m Member
	err := row.Scan(&m.OrganizationID, &m.UserID, &m.Email, &m.DisplayName, &m.Role, &m.JoinedAt)
	return m, mapErr(err)
}

// InsertOrganization creates an organization. It returns ErrConflict when the slug is taken,
// without aborting the surrounding transaction, so a caller may try another slug in it.
func (q *Queries) InsertOrganization(ctx context.Context, name, slug string) (Organization, error) {
	o, err := scanOrganization(q.db.QueryRow(ctx, `
		INSERT INTO organizations AS o (name, slug) VALUES ($1, $2)
		ON CONFLICT (slug) DO NOTHING
		RETURNING `+organizationColumns, name, slug))
	if errors.Is(err, ErrNotFound) {
		return o, ErrConflict
	}
	return o, err
}

// CountOwnedOrganizations returns how many organizations the user owns. It locks the user's
// row first, so concurrent creations by one user count one after another and a limit on the
// count holds.
func (q *Queries) CountOwnedOrganizations(ctx context.Context, userID uuid.UUID) (int, error) {
	var locked uuid.UUID
	// NO KEY UPDATE does not block the KEY SHARE locks that inserting memberships and other
	// rows referencing the user take.
	if err := q.db.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&locked); err != nil {
		return 0, mapErr(err)
	}
	var n int
	err := q.db.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE user_id = $1 AND role = $2`, userID, RoleOwner).Scan(&n)
	return n, mapErr(err)
}

// LockOrganization returns the organization and locks its row until the transaction ends,
// which serialises changes that must see each other (invitation limits, deletion).
func (q *Queries) LockOrganization(ctx context.Context, orgID uuid.UUID) (Organization, error) {
	return scanOrganization(q.db.QueryRow(ctx, `
		SELECT `+organizationColumns+` FROM organizations o WHERE o.id = $1 FOR NO KEY UPDATE`, orgID))
}

// OrganizationByID returns an organization.
func (q *Queries) OrganizationByID(ctx context.Context, orgID uuid.UUID) (Organization, error) {
	return scanOrganization(q.db.QueryRow(ctx, `SELECT `+organizationColumns+` FROM organizations o WHERE o.id = $1`, orgID))
}

// OrganizationsOfUser lists the organizations the user is a member of, by name.
func (q *Queries) OrganizationsOfUser(ctx context.Context, userID uuid.UUID) ([]MemberOrganization, error) {
	rows, err := q.db.Query(ctx, memberOrganizationQuery+` ORDER BY lower(o.name), o.slug`, userID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []MemberOrganization
	for rows.Next() {
		o, err := scanMemberOrganization(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, mapErr(rows.Err())
}

// OrganizationOfUser returns one organization the user is a member of; ErrNotFound when the
// user is not a member.
func (q *Queries) OrganizationOfUser(ctx context.Context, orgID, userID uuid.UUID) (MemberOrganization, error) {
	return scanMemberOrganization(q.db.QueryRow(ctx, memberOrganizationQuery+` WHERE o.id = $2`, userID, orgID))
}

// RenameOrganization sets the organization's name.
func (q *Queries) RenameOrganization(ctx context.Context, orgID uuid.UUID, name string) (Organization, error) {
	return scanOrganization(q.db.QueryRow(ctx, `
		UPDATE organizations o SET name = $2 WHERE o.id = $1 RETURNING `+organizationColumns, orgID, name))
}

// DeleteOrganization deletes the organization; its memberships, invitations and API tokens go
// with it (foreign keys cascade). Activity rows keep its id for history.
func (q *Queries) DeleteOrganization(ctx context.Context, orgID uuid.UUID) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM organizations WHERE id = $1`, orgID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// AddMember makes the user a member of the organization with the role; ErrConflict when the
// user already is one, or when role is RoleOwner and the organization has an owner.
func (q *Queries) AddMember(ctx context.Context, orgID, userID uuid.UUID, role Role) error {
	_, err := q.db.Exec(ctx, `INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)`,
		orgID, userID, role)
	return mapErr(err)
}

// ListMembers lists the organization's members, highest role first, then by email.
func (q *Queries) ListMembers(ctx context.Context, orgID uuid.UUID) ([]Member, error) {
	rows, err := q.db.Query(ctx, `
		SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = $1 ORDER BY m.role DESC, u.email`, orgID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// LockMembers returns the memberships of the given users in the organization, keyed by user
// id, and locks them until the transaction ends. Users who are not members are missing from
// the map. Rows are locked in user id order, so two transactions locking overlapping sets
// (a role change and an ownership transfer) cannot deadlock.
func (q *Queries) LockMembers(ctx context.Context, orgID uuid.UUID, userIDs ...uuid.UUID) (map[uuid.UUID]Member, error) {
	rows, err := q.db.Query(ctx, `
		SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = $1 AND m.user_id = ANY($2)
		ORDER BY m.user_id FOR UPDATE OF m`, orgID, userIDs)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]Member, len(userIDs))
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out[m.UserID] = m
	}
	return out, mapErr(rows.Err())
}

// MemberByEmail returns the member of the organization with the email (any case).
func (q *Queries) MemberByEmail(ctx context.Context, orgID uuid.UUID, email string) (Member, error) {
	return scanMember(q.db.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = $1 AND u.email = $2`, orgID, NormalizeEmail(email)))
}

// SetMemberRole changes a member's role. Making someone the owner fails with ErrConflict
// while the organization has another owner: demote the owner first.
func (q *Queries) SetMemberRole(ctx context.Context, orgID, userID uuid.UUID, role Role) (Member, error) {
	return scanMember(q.db.QueryRow(ctx, `
		WITH m AS (
			UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2
			RETURNING organization_id, user_id, role, created_at)
		SELECT `+memberColumns+` FROM m JOIN users u ON u.id = m.user_id`, orgID, userID, role))
}

// DeleteMember removes the user from the organization and revokes the API tokens the user made
// in it. Those tokens stop working with the membership anyway; revoking them keeps them dead
// should the user be invited back. It returns how many tokens it revoked.
func (q *Queries) DeleteMember(ctx context.Context, orgID, userID uuid.UUID) (revokedTokens int64, err error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, orgID, userID)
	if err != nil {
		return 0, mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return 0, ErrNotFound
	}
	tag, err = q.db.Exec(ctx, `
		UPDATE api_tokens SET revoked_at = now()
		WHERE organization_id = $1 AND created_by = $2 AND revoked_at IS NULL`, orgID, userID)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}
