package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// BillingAccount is an organization's balance rules and state (billing.Rules keeps it).
type BillingAccount struct {
	OrganizationID uuid.UUID
	// LowBalanceThreshold is the organization's own threshold; nil: the platform's.
	LowBalanceThreshold *int64
	LowBalanceWarnedAt  *time.Time
	NegativeSince       *time.Time
	SuspendedAt         *time.Time
	// SuspendedBy is "billing" or "admin" while suspended, else "".
	SuspendedBy   string
	SuspendReason string
	UpdatedAt     time.Time
}

// Suspension sources.
const (
	SuspendedByBilling = "billing"
	SuspendedByAdmin   = "admin"
)

const billingAccountColumns = `organization_id, low_balance_threshold, low_balance_warned_at, negative_since,
	suspended_at, coalesce(suspended_by, ''), suspend_reason, updated_at`

func scanBillingAccount(row pgx.Row) (BillingAccount, error) {
	var a BillingAccount
	err := row.Scan(&a.OrganizationID, &a.LowBalanceThreshold, &a.LowBalanceWarnedAt, &a.NegativeSince,
		&a.SuspendedAt, &a.SuspendedBy, &a.SuspendReason, &a.UpdatedAt)
	return a, mapErr(err)
}

// BillingAccount returns the organization's account; a zero one (no threshold, nothing
// pending) when it has none yet.
func (q *Queries) BillingAccount(ctx context.Context, orgID uuid.UUID) (BillingAccount, error) {
	a, err := scanBillingAccount(q.db.QueryRow(ctx, `SELECT `+billingAccountColumns+`
		FROM billing_accounts WHERE organization_id = $1`, orgID))
	if err == ErrNotFound {
		return BillingAccount{OrganizationID: orgID}, nil
	}
	return a, err
}

// LockBillingAccount returns the organization's account locked for the transaction,
// creating it first if needed. Every change of balance state goes through this lock.
func (q *Queries) LockBillingAccount(ctx context.Context, orgID uuid.UUID) (BillingAccount, error) {
	if _, err := q.db.Exec(ctx, `INSERT INTO billing_accounts (organization_id) VALUES ($1)
		ON CONFLICT (organization_id) DO NOTHING`, orgID); err != nil {
		return BillingAccount{}, mapErr(err)
	}
	return scanBillingAccount(q.db.QueryRow(ctx, `SELECT `+billingAccountColumns+`
		FROM billing_accounts WHERE organization_id = $1 FOR UPDATE`, orgID))
}

// UpdateBillingAccount writes a locked account back.
func (q *Queries) UpdateBillingAccount(ctx context.Context, a BillingAccount) error {
	var by *string
	if a.SuspendedBy != "" {
		by = &a.SuspendedBy
	}
	_, err := q.db.Exec(ctx, `UPDATE billing_accounts SET low_balance_threshold = $2, low_balance_warned_at = $3,
		negative_since = $4, suspended_at = $5, suspended_by = $6, suspend_reason = $7, updated_at = now()
		WHERE organization_id = $1`,
		a.OrganizationID, a.LowBalanceThreshold, a.LowBalanceWarnedAt, a.NegativeSince, a.SuspendedAt, by, a.SuspendReason)
	return mapErr(err)
}

// AccountsToCheck lists the organizations whose balance state may be due to change: their
// wallet, once used, is at or under its threshold without a warning (or over it with one), negative
// without a grace period (or not negative with one), past its grace and not suspended, or
// suspended by billing with money again. threshold is the platform's; graceEnd is now minus
// the grace period.
func (q *Queries) AccountsToCheck(ctx context.Context, threshold int64, graceEnd time.Time) ([]uuid.UUID, error) {
	rows, err := q.db.Query(ctx, `
		SELECT w.organization_id FROM wallets w
		LEFT JOIN billing_accounts a ON a.organization_id = w.organization_id
		WHERE (w.balance <= coalesce(a.low_balance_threshold, $1) AND EXISTS (
				SELECT 1 FROM wallet_transactions t WHERE t.organization_id = w.organization_id))
				<> (a.low_balance_warned_at IS NOT NULL)
			OR (w.balance < 0) <> (a.negative_since IS NOT NULL)
			OR (a.negative_since <= $2 AND a.suspended_at IS NULL)
			OR (a.suspended_by = 'billing' AND w.balance > 0)
		ORDER BY w.organization_id`, threshold, graceEnd)
	return collect(rows, err, func(row pgx.Row) (uuid.UUID, error) {
		var id uuid.UUID
		return id, row.Scan(&id)
	})
}

// WalletHasTransactions reports whether the organization's ledger has a row: a wallet
// opened by a free app has none, and is not "low" at 0.
func (q *Queries) WalletHasTransactions(ctx context.Context, orgID uuid.UUID) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM wallet_transactions WHERE organization_id = $1)`, orgID).Scan(&ok)
	return ok, mapErr(err)
}

// OrganizationWallet is a wallet with its organization and balance state, for admins.
type OrganizationWallet struct {
	Wallet
	OrganizationName string
	OrganizationSlug string
	Account          BillingAccount
}

// OrganizationWallets lists every organization with its wallet (zero before its first use)
// and account, by name; a non-empty query keeps the organizations whose name or slug
// contains it.
func (q *Queries) OrganizationWallets(ctx context.Context, query string, limit int) ([]OrganizationWallet, error) {
	rows, err := q.db.Query(ctx, `
		SELECT o.id, coalesce(w.currency, ''), coalesce(w.balance, 0), coalesce(w.created_at, o.created_at),
			coalesce(w.updated_at, o.created_at), o.name, o.slug,
			a.low_balance_threshold, a.low_balance_warned_at, a.negative_since, a.suspended_at,
			coalesce(a.suspended_by, ''), coalesce(a.suspend_reason, ''), coalesce(a.updated_at, o.created_at)
		FROM organizations o
		LEFT JOIN wallets w ON w.organization_id = o.id
		LEFT JOIN billing_accounts a ON a.organization_id = o.id
		WHERE $1 = '' OR o.name ILIKE '%' || $2 || '%' OR o.slug ILIKE '%' || $2 || '%'
		ORDER BY o.name, o.id
		LIMIT $3`, query, escapeLikePattern(query), limit)
	return collect(rows, err, func(row pgx.Row) (OrganizationWallet, error) {
		var w OrganizationWallet
		a := &w.Account
		err := row.Scan(&w.OrganizationID, &w.Currency, &w.Balance, &w.CreatedAt, &w.UpdatedAt, &w.OrganizationName,
			&w.OrganizationSlug, &a.LowBalanceThreshold, &a.LowBalanceWarnedAt, &a.NegativeSince, &a.SuspendedAt,
			&a.SuspendedBy, &a.SuspendReason, &a.UpdatedAt)
		a.OrganizationID = w.OrganizationID
		return w, err
	})
}

// OrganizationAdmins lists the members who hear about the organization's money: admins and
// owners.
func (q *Queries) OrganizationAdmins(ctx context.Context, orgID uuid.UUID) ([]Member, error) {
	ms, err := q.ListMembers(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := ms[:0]
	for _, m := range ms {
		if m.Role >= RoleAdmin {
			out = append(out, m)
		}
	}
	return out, nil
}
