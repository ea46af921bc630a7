package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Billing's tables: wallets and their append-only ledger, billable runs, price histories and
// the usage ledger. The rules (what a period costs, who may post what) live in package
// billing; these methods are its queries. Whoever locks more than one wallet locks them in
// organization_id order (LockUsageWallets does), so concurrent writers never deadlock.

// ErrCurrencyMismatch means an amount is not in the currency of the organization's wallet.
var ErrCurrencyMismatch = errors.New("currency does not match the wallet's")

// Wallet is an organization's prepaid balance, in minor units of Currency.
type Wallet struct {
	OrganizationID uuid.UUID
	Currency       string
	Balance        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const walletColumns = `organization_id, currency, balance, created_at, updated_at`

func scanWallet(row pgx.Row) (Wallet, error) {
	var w Wallet
	err := row.Scan(&w.OrganizationID, &w.Currency, &w.Balance, &w.CreatedAt, &w.UpdatedAt)
	return w, mapErr(err)
}

// WalletTransaction is one row of a wallet's ledger.
type WalletTransaction struct {
	ID             int64
	OrganizationID uuid.UUID
	// Kind is credit, debit, refund or adjustment.
	Kind string
	// Amount is signed: what the row added to the balance.
	Amount       int64
	Currency     string
	BalanceAfter int64
	Reason       string
	Actor        string
	Reference    string
	CreatedAt    time.Time
}

const walletTransactionColumns = `id, organization_id, kind, amount, currency, balance_after, reason, actor, reference, created_at`

func scanWalletTransaction(row pgx.Row) (WalletTransaction, error) {
	var t WalletTransaction
	err := row.Scan(&t.ID, &t.OrganizationID, &t.Kind, &t.Amount, &t.Currency, &t.BalanceAfter, &t.Reason, &t.Actor,
		&t.Reference, &t.CreatedAt)
	return t, mapErr(err)
}

// Wallet returns an organization's wallet; ErrNotFound before its first use.
func (q *Queries) Wallet(ctx context.Context, orgID uuid.UUID) (Wallet, error) {
	return scanWallet(q.db.QueryRow(ctx, `SELECT `+walletColumns+` FROM wallets WHERE organization_id = $1`, orgID))
}

// LockWallet returns an organization's wallet locked until the transaction ends, creating
// it (empty, in currency) on first use. The wallet may be in another currency: callers check.
func (q *Queries) LockWallet(ctx context.Context, orgID uuid.UUID, currency string) (Wallet, error) {
	w, err := scanWallet(q.db.QueryRow(ctx, `SELECT `+walletColumns+` FROM wallets WHERE organization_id = $1 FOR UPDATE`, orgID))
	if !errors.Is(err, ErrNotFound) {
		return w, err
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO wallets (organization_id, currency) VALUES ($1, $2)
		ON CONFLICT (organization_id) DO NOTHING`, orgID, currency); err != nil {
		return Wallet{}, mapErr(err)
	}
	return scanWallet(q.db.QueryRow(ctx, `SELECT `+walletColumns+` FROM wallets WHERE organization_id = $1 FOR UPDATE`, orgID))
}

// AppendWalletTransaction adds t to its wallet's ledger and balance, unless a row with its
// reference exists: then it returns that row and false. The wallet must be locked
// (LockWallet) in this transaction, and t.Currency must be its currency.
func (q *Queries) AppendWalletTransaction(ctx context.Context, t WalletTransaction) (WalletTransaction, bool, error) {
	if q.tx == nil {
		return WalletTransaction{}, false, errors.New("append wallet transaction: outside a transaction")
	}
	at := t.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	got, err := scanWalletTransaction(q.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO wallet_transactions (organization_id, kind, amount, currency, balance_after, reason, actor, reference, created_at)
			SELECT w.organization_id, $2, $3, w.currency, w.balance + $3, $4, $5, $6, $7
			FROM wallets w WHERE w.organization_id = $1 AND w.currency = $8
			ON CONFLICT (reference) DO NOTHING
			RETURNING `+walletTransactionColumns+`
		), upd AS (
			UPDATE wallets w SET balance = ins.balance_after, updated_at = $7
			FROM ins WHERE w.organization_id = ins.organization_id
		)
		SELECT `+walletTransactionColumns+` FROM ins`,
		t.OrganizationID, t.Kind, t.Amount, t.Reason, t.Actor, t.Reference, at, t.Currency))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return WalletTransaction{}, false, fmt.Errorf("append wallet transaction %s: %w", t.Reference, err)
	}
	// Nothing inserted: the reference was applied before (or the wallet is missing or in
	// another currency, which the caller checked under the lock).
	prev, err := scanWalletTransaction(q.db.QueryRow(ctx, `SELECT `+walletTransactionColumns+`
		FROM wallet_transactions WHERE reference = $1`, t.Reference))
	if errors.Is(err, ErrNotFound) {
		return WalletTransaction{}, false, fmt.Errorf("append wallet transaction %s: %w", t.Reference, ErrCurrencyMismatch)
	}
	return prev, false, err
}

// WalletTransactions lists an organization's ledger newest first, `limit` rows with ids below
// beforeID (0: from the newest).
func (q *Queries) WalletTransactions(ctx context.Context, orgID uuid.UUID, beforeID int64, limit int) ([]WalletTransaction, error) {
	rows, err := q.db.Query(ctx, `SELECT `+walletTransactionColumns+` FROM wallet_transactions
		WHERE organization_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, orgID, beforeID, limit)
	return collect(rows, err, scanWalletTransaction)
}

// WalletMismatch is a wallet whose balance is not what its ledger says.
type WalletMismatch struct {
	OrganizationID uuid.UUID
	Balance        int64
	// LedgerSum adds up the wallet's ledger amounts.
	LedgerSum int64
	// BrokenRows counts ledger rows whose balance_after is not the running sum up to them.
	BrokenRows int64
}

// CheckWalletsBalance returns every wallet whose balance differs from the sum of its ledger,
// or whose ledger's balance_after column does not follow its amounts; none when the books
// hold. It reads the whole ledger: for audits and tests, not for request paths.
func (q *Queries) CheckWalletsBalance(ctx context.Context) ([]WalletMismatch, error) {
	rows, err := q.db.Query(ctx, `
		WITH chain AS (
			SELECT organization_id, amount, balance_after,
				sum(amount) OVER (PARTITION BY organization_id ORDER BY id) AS running
			FROM wallet_transactions
		), per AS (
			SELECT organization_id, sum(amount)::bigint AS total,
				count(*) FILTER (WHERE balance_after <> running) AS broken
			FROM chain GROUP BY organization_id
		)
		SELECT w.organization_id, w.balance, coalesce(p.total, 0), coalesce(p.broken, 0)
		FROM wallets w LEFT JOIN per p ON p.organization_id = w.organization_id
		WHERE w.balance <> coalesce(p.total, 0) OR coalesce(p.broken, 0) > 0
		ORDER BY w.organization_id`)
	return collect(rows, err, func(row pgx.Row) (WalletMismatch, error) {
		var m WalletMismatch
		err := row.Scan(&m.OrganizationID, &m.Balance, &m.LedgerSum, &m.BrokenRows)
		return m, mapErr(err)
	})
}

// BillableRun is an interval during which a resource ran at a quantity.
type BillableRun struct {
	ID             int64
	OrganizationID uuid.UUID
	ResourceType   string
	ResourceID     uuid.UUID
	PlanID         *uuid.UUID
	Quantity       int32
	UnitPrice      int64
	Currency       string
	StartedAt      time.Time
	EndedAt        *time.Time
}

const billableRunColumns = `id, organization_id, resource_type, resource_id, plan_id, quantity, unit_price, currency,
	started_at, ended_at`

func scanBillableRun(row pgx.Row) (BillableRun, error) {
	var r BillableRun
	err := row.Scan(&r.ID, &r.OrganizationID, &r.ResourceType, &r.ResourceID, &r.PlanID, &r.Quantity, &r.UnitPrice,
		&r.Currency, &r.StartedAt, &r.EndedAt)
	return r, mapErr(err)
}

// RunChange says a resource runs at Quantity (0: stopped) from At on.
type RunChange struct {
	OrganizationID uuid.UUID
	ResourceType   string
	ResourceID     uuid.UUID
	PlanID         *uuid.UUID
	Quantity       int32
	UnitPrice      int64
	Currency       string
	// At is truncated to the second.
	At time.Time
}

// ApplyRunChanges ends each resource's open run and opens one at the new quantity when it
// is above 0; a resource whose open run already has the change's quantity, plan, price and
// currency is left alone. A change never reaches into a period already metered (for all
// resources, or for this one): its time moves up to that period's end. Wallets of
// organizations with running resources are created on first use; ErrCurrencyMismatch when
// one is in another currency. Resources must be distinct; call inside a transaction.
func (q *Queries) ApplyRunChanges(ctx context.Context, changes []RunChange) error {
	if len(changes) == 0 {
		return nil
	}
	n := len(changes)
	orgs, types, ids := make([]uuid.UUID, n), make([]string, n), make([]uuid.UUID, n)
	currencies := make([]string, n)
	quantities := make([]int32, n)
	byKey := make(map[runKey]int, n)
	for i, c := range changes {
		orgs[i], types[i], ids[i], currencies[i], quantities[i] = c.OrganizationID, c.ResourceType, c.ResourceID, c.Currency, c.Quantity
		k := runKey{c.ResourceType, c.ResourceID}
		if _, dup := byKey[k]; dup {
			return fmt.Errorf("apply run changes: %s %s appears twice", c.ResourceType, c.ResourceID)
		}
		byKey[k] = i
	}

	// Wallets first, in organization order, and their currency.
	if _, err := q.db.Exec(ctx, `
		INSERT INTO wallets (organization_id, currency)
		SELECT DISTINCT ON (org) org, currency
		FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(org, currency, quantity)
		WHERE quantity > 0 ORDER BY org
		ON CONFLICT (organization_id) DO NOTHING`, orgs, currencies, quantities); err != nil {
		return fmt.Errorf("apply run changes: wallets: %w", mapErr(err))
	}
	var mismatched int
	if err := q.db.QueryRow(ctx, `
		SELECT count(*) FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(org, currency, quantity)
		JOIN wallets w ON w.organization_id = c.org
		WHERE c.quantity > 0 AND w.currency <> c.currency`, orgs, currencies, quantities).Scan(&mismatched); err != nil {
		return fmt.Errorf("apply run changes: wallets: %w", mapErr(err))
	}
	if mismatched > 0 {
		return fmt.Errorf("apply run changes: %w", ErrCurrencyMismatch)
	}

	// How far metering has gone (waiting for a period being closed right now), the open
	// runs, locked, and each resource's last charge.
	var meteredUntil *time.Time
	if err := q.db.QueryRow(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, billingRunsLock).Scan(new(string)); err != nil {
		return fmt.Errorf("apply run changes: lock: %w", mapErr(err))
	}
	if err := q.db.QueryRow(ctx, `SELECT max(period_start) + interval '1 hour' FROM metered_periods`).Scan(&meteredUntil); err != nil {
		return fmt.Errorf("apply run changes: metered periods: %w", mapErr(err))
	}
	type state struct {
		open    *BillableRun
		charged *time.Time
	}
	states := make([]state, n)
	rows, err := q.db.Query(ctx, `SELECT `+billableRunColumns+` FROM billable_runs r
		JOIN unnest($1::text[], $2::uuid[]) AS k(k_type, k_id) ON r.resource_type = k.k_type AND r.resource_id = k.k_id
		WHERE r.ended_at IS NULL ORDER BY r.resource_type, r.resource_id FOR UPDATE OF r`, types, ids)
	open, err := collect(rows, err, scanBillableRun)
	if err != nil {
		return fmt.Errorf("apply run changes: open runs: %w", err)
	}
	for _, r := range open {
		states[byKey[runKey{r.ResourceType, r.ResourceID}]].open = &r
	}
	rows, err = q.db.Query(ctx, `
		SELECT k.type, k.id, u.charged_until
		FROM unnest($1::text[], $2::uuid[]) AS k(type, id),
		LATERAL (SELECT max(period_end) AS charged_until FROM usage_charges u
			WHERE u.resource_type = k.type AND u.resource_id = k.id) u
		WHERE u.charged_until IS NOT NULL`, types, ids)
	if err != nil {
		return fmt.Errorf("apply run changes: charged periods: %w", mapErr(err))
	}
	for rows.Next() {
		var k runKey
		var until time.Time
		if err := rows.Scan(&k.typ, &k.id, &until); err != nil {
			rows.Close()
			return fmt.Errorf("apply run changes: charged periods: %w", mapErr(err))
		}
		states[byKey[k]].charged = &until
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("apply run changes: charged periods: %w", mapErr(err))
	}

	var deleteIDs, endIDs []int64
	var endAts []time.Time
	var ins []RunChange
	for i, c := range changes {
		at := c.At.UTC().Truncate(time.Second)
		if meteredUntil != nil && at.Before(*meteredUntil) {
			at = *meteredUntil
		}
		st := states[i]
		if st.charged != nil && at.Before(*st.charged) {
			at = *st.charged
		}
		if open := st.open; open != nil {
			if open.Quantity == c.Quantity && open.UnitPrice == c.UnitPrice && open.Currency == c.Currency &&
				samePlan(open.PlanID, c.PlanID) {
				continue
			}
			if at.Before(open.StartedAt) {
				at = open.StartedAt
			}
			if at.Equal(open.StartedAt) {
				deleteIDs = append(deleteIDs, open.ID) // never ran for a second: never billed
			} else {
				endIDs, endAts = append(endIDs, open.ID), append(endAts, at)
			}
		}
		if c.Quantity > 0 {
			c.At = at
			ins = append(ins, c)
		}
	}
	if len(deleteIDs) > 0 {
		if _, err := q.db.Exec(ctx, `DELETE FROM billable_runs WHERE id = ANY($1)`, deleteIDs); err != nil {
			return fmt.Errorf("apply run changes: %w", mapErr(err))
		}
	}
	if len(endIDs) > 0 {
		if _, err := q.db.Exec(ctx, `UPDATE billable_runs r SET ended_at = e.at
			FROM unnest($1::bigint[], $2::timestamptz[]) AS e(id, at) WHERE r.id = e.id`, endIDs, endAts); err != nil {
			return fmt.Errorf("apply run changes: %w", mapErr(err))
		}
	}
	if len(ins) == 0 {
		return nil
	}
	m := len(ins)
	orgs, types, ids, currencies, quantities = orgs[:m], types[:m], ids[:m], currencies[:m], quantities[:m]
	plans, prices, ats := make([]*uuid.UUID, m), make([]int64, m), make([]time.Time, m)
	for i, c := range ins {
		orgs[i], types[i], ids[i], plans[i], quantities[i], prices[i], currencies[i], ats[i] =
			c.OrganizationID, c.ResourceType, c.ResourceID, c.PlanID, c.Quantity, c.UnitPrice, c.Currency, c.At
	}
	if _, err := q.db.Exec(ctx, `
		INSERT INTO billable_runs (organization_id, resource_type, resource_id, plan_id, quantity, unit_price, currency, started_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::bigint[], $7::text[], $8::timestamptz[])`,
		orgs, types, ids, plans, quantities, prices, currencies, ats); err != nil {
		return fmt.Errorf("apply run changes: %w", mapErr(err))
	}
	return nil
}

type runKey struct {
	typ string
	id  uuid.UUID
}

func samePlan(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// BillableRuns lists a resource's runs, oldest first.
func (q *Queries) BillableRuns(ctx context.Context, resourceType string, resourceID uuid.UUID) ([]BillableRun, error) {
	rows, err := q.db.Query(ctx, `SELECT `+billableRunColumns+` FROM billable_runs
		WHERE resource_type = $1 AND resource_id = $2 ORDER BY started_at`, resourceType, resourceID)
	return collect(rows, err, scanBillableRun)
}

// PriceOverride is an admin's price for one resource from EffectiveFrom on; a nil UnitPrice
// ends the previous override.
type PriceOverride struct {
	ID            int64
	ResourceType  string
	ResourceID    uuid.UUID
	UnitPrice     *int64
	EffectiveFrom time.Time
	SetBy         string
	Reason        string
	CreatedAt     time.Time
}

const priceOverrideColumns = `id, resource_type, resource_id, unit_price, effective_from, set_by, reason, created_at`

func scanPriceOverride(row pgx.Row) (PriceOverride, error) {
	var o PriceOverride
	err := row.Scan(&o.ID, &o.ResourceType, &o.ResourceID, &o.UnitPrice, &o.EffectiveFrom, &o.SetBy, &o.Reason, &o.CreatedAt)
	return o, mapErr(err)
}

// InsertPriceOverride appends o to the resource's override history.
func (q *Queries) InsertPriceOverride(ctx context.Context, o PriceOverride) (PriceOverride, error) {
	return scanPriceOverride(q.db.QueryRow(ctx, `
		INSERT INTO price_overrides (resource_type, resource_id, unit_price, effective_from, set_by, reason)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+priceOverrideColumns,
		o.ResourceType, o.ResourceID, o.UnitPrice, o.EffectiveFrom, o.SetBy, o.Reason))
}

// PriceOverrides lists a resource's override history, newest in force first.
func (q *Queries) PriceOverrides(ctx context.Context, resourceType string, resourceID uuid.UUID) ([]PriceOverride, error) {
	rows, err := q.db.Query(ctx, `SELECT `+priceOverrideColumns+` FROM price_overrides
		WHERE resource_type = $1 AND resource_id = $2 ORDER BY effective_from DESC, id DESC`, resourceType, resourceID)
	return collect(rows, err, scanPriceOverride)
}

// PlanPrice is a plan's price from EffectiveFrom on.
type PlanPrice struct {
	PlanID        uuid.UUID
	PricePerHour  int64
	EffectiveFrom time.Time
}

// InsertPlanPrice records a plan price from effectiveFrom on (a scheduled change). Changing
// plans.price_per_hour records one from the time of the change by itself (a trigger).
func (q *Queries) InsertPlanPrice(ctx context.Context, p PlanPrice) error {
	_, err := q.db.Exec(ctx, `INSERT INTO plan_prices (plan_id, price_per_hour, effective_from) VALUES ($1, $2, $3)`,
		p.PlanID, p.PricePerHour, p.EffectiveFrom)
	return mapErr(err)
}

// PlanPrices lists a plan's price history, newest in force first. The first price's
// EffectiveFrom is -infinity, which pgx reads as the zero time.
func (q *Queries) PlanPrices(ctx context.Context, planID uuid.UUID) ([]PlanPrice, error) {
	rows, err := q.db.Query(ctx, `SELECT plan_id, price_per_hour,
			CASE WHEN isfinite(effective_from) THEN effective_from ELSE '0001-01-01 00:00:00Z' END
		FROM plan_prices WHERE plan_id = $1 ORDER BY effective_from DESC, id DESC`, planID)
	return collect(rows, err, func(row pgx.Row) (PlanPrice, error) {
		var p PlanPrice
		err := row.Scan(&p.PlanID, &p.PricePerHour, &p.EffectiveFrom)
		return p, mapErr(err)
	})
}

// billingRunsLock is the advisory lock between recording run changes (shared) and closing
// a period for metering (exclusive).
const billingRunsLock = 0x62696c6c696e67 // "billing"

// MeteredPeriods returns the starts of the completely metered periods in [from, to), in
// order.
func (q *Queries) MeteredPeriods(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	rows, err := q.db.Query(ctx, `SELECT period_start FROM metered_periods
		WHERE period_start >= $1 AND period_start < $2 AND completed_at IS NOT NULL ORDER BY period_start`, from, to)
	return collect(rows, err, func(row pgx.Row) (time.Time, error) {
		var t time.Time
		return t, mapErr(row.Scan(&t))
	})
}

// ClosePeriod records that the period starting at start is being metered, so no run change
// lands inside it any more: ApplyRunChanges moves later ones to its end. It waits for the
// transactions recording run changes now, so once it commits, every change inside the
// period is committed and visible. Call it in its own transaction, before reading what ran.
func (q *Queries) ClosePeriod(ctx context.Context, start, at time.Time) error {
	if _, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, billingRunsLock); err != nil {
		return fmt.Errorf("close period: lock: %w", mapErr(err))
	}
	_, err := q.db.Exec(ctx, `INSERT INTO metered_periods (period_start, started_at) VALUES ($1, $2)
		ON CONFLICT (period_start) DO NOTHING`, start, at)
	return mapErr(err)
}

// MarkPeriodMetered records that every resource that ran in the period starting at start
// is charged.
func (q *Queries) MarkPeriodMetered(ctx context.Context, start, at time.Time) error {
	_, err := q.db.Exec(ctx, `UPDATE metered_periods SET completed_at = $2
		WHERE period_start = $1 AND completed_at IS NULL`, start, at)
	return mapErr(err)
}

// UsageKey names a billable resource and its organization.
type UsageKey struct {
	OrganizationID uuid.UUID
	ResourceType   string
	ResourceID     uuid.UUID
}

// RanResources lists the resources that ran in [start, end), by organization. Whether they
// are charged already is ChargeUsage's business: it skips those under the wallet lock.
func (q *Queries) RanResources(ctx context.Context, start, end time.Time) ([]UsageKey, error) {
	rows, err := q.db.Query(ctx, `
		SELECT organization_id, resource_type, resource_id FROM billable_runs
		WHERE ended_at IS NULL AND started_at < $2
		UNION
		SELECT organization_id, resource_type, resource_id FROM billable_runs
		WHERE ended_at > $1 AND started_at < $2
		ORDER BY 1, 2, 3`, start, end)
	return collect(rows, err, func(row pgx.Row) (UsageKey, error) {
		var k UsageKey
		return k, mapErr(row.Scan(&k.OrganizationID, &k.ResourceType, &k.ResourceID))
	})
}

// LockUsageWallets locks the wallets of the organizations of keys, in organization order,
// creating missing ones in the currency of the organization's runs.
func (q *Queries) LockUsageWallets(ctx context.Context, keys []UsageKey) error {
	seen := make(map[uuid.UUID]bool, len(keys))
	orgs := make([]uuid.UUID, 0, len(keys))
	for _, k := range keys {
		if !seen[k.OrganizationID] {
			seen[k.OrganizationID] = true
			orgs = append(orgs, k.OrganizationID)
		}
	}
	lock := func() (int, error) {
		var n int
		err := q.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM wallets WHERE organization_id = ANY($1)
			ORDER BY organization_id FOR UPDATE) l`, orgs).Scan(&n)
		return n, mapErr(err)
	}
	n, err := lock()
	if err != nil || n >= len(orgs) {
		return err
	}
	if _, err := q.db.Exec(ctx, `
		INSERT INTO wallets (organization_id, currency)
		SELECT DISTINCT ON (organization_id) organization_id, currency FROM billable_runs
		WHERE organization_id = ANY($1) ORDER BY organization_id, started_at DESC
		ON CONFLICT (organization_id) DO NOTHING`, orgs); err != nil {
		return mapErr(err)
	}
	_, err = lock()
	return err
}

// UsageResult is what one ChargeUsage did.
type UsageResult struct {
	// Charges counts new usage charges; Amount adds them up (whatever their currency).
	Charges int64
	Amount  int64
	// Debits counts wallet ledger rows written: one per organization with charges above 0.
	Debits int64
}

// ChargeUsage charges the resources of keys for the period [start, end) — each at most once
// ever, however many times it is called — and debits each organization's wallet by the sum
// of its new charges (one ledger row per organization, reference "usage:<id of its first
// charge>"), all in one statement. The charge of a resource is the sum over its runs in the
// period of quantity × seconds run × the unit price in force at start (its override, else
// its plan's price, else the run's own), divided by 3600 and rounded half up, once. Call it
// in a transaction, after LockUsageWallets(keys): charges of a resource are only written
// under its organization's wallet lock, so the "not charged yet" test cannot race (and the
// unique key backs it). at stamps the new rows.
func (q *Queries) ChargeUsage(ctx context.Context, keys []UsageKey, start, end, at time.Time) (UsageResult, error) {
	types, ids := make([]string, len(keys)), make([]uuid.UUID, len(keys))
	for i, k := range keys {
		types[i], ids[i] = k.ResourceType, k.ResourceID
	}
	var res UsageResult
	var mismatched int64
	err := q.db.QueryRow(ctx, `
		WITH keys AS (
			SELECT * FROM unnest($1::text[], $2::uuid[]) AS k(resource_type, resource_id)
			WHERE NOT EXISTS (SELECT 1 FROM usage_charges u WHERE u.resource_type = k.resource_type
				AND u.resource_id = k.resource_id AND u.period_start = $3)
		), pieces AS (
			SELECT r.organization_id, r.resource_type, r.resource_id, r.currency, r.started_at,
				r.quantity::bigint * (extract(epoch FROM least(coalesce(r.ended_at, $4), $4))::bigint
					- extract(epoch FROM greatest(r.started_at, $3))::bigint) AS unit_seconds,
				coalesce(o.unit_price, p.price_per_hour, r.unit_price) AS price
			FROM keys k
			JOIN billable_runs r ON r.resource_type = k.resource_type AND r.resource_id = k.resource_id
			LEFT JOIN LATERAL (
				SELECT o.unit_price FROM price_overrides o
				WHERE o.resource_type = r.resource_type AND o.resource_id = r.resource_id AND o.effective_from <= $3
				ORDER BY o.effective_from DESC, o.id DESC LIMIT 1) o ON true
			LEFT JOIN LATERAL (
				SELECT p.price_per_hour FROM plan_prices p
				WHERE p.plan_id = r.plan_id AND p.effective_from <= $3
				ORDER BY p.effective_from DESC, p.id DESC LIMIT 1) p ON true
			WHERE r.started_at < $4 AND (r.ended_at IS NULL OR r.ended_at > $3)
		), charges AS (
			SELECT organization_id, resource_type, resource_id, min(currency) AS currency,
				sum(unit_seconds)::bigint AS unit_seconds,
				(array_agg(price ORDER BY started_at DESC))[1] AS unit_price,
				div(sum(unit_seconds::numeric * price) + 1800, 3600)::bigint AS amount
			FROM pieces GROUP BY organization_id, resource_type, resource_id
		), ins AS (
			INSERT INTO usage_charges (organization_id, resource_type, resource_id, period_start, period_end,
				unit_seconds, unit_price, amount, currency, created_at)
			SELECT organization_id, resource_type, resource_id, $3, $4, unit_seconds, unit_price, amount, currency, $5
			FROM charges ORDER BY organization_id, resource_type, resource_id
			RETURNING id, organization_id, amount, currency
		), debits AS (
			SELECT organization_id, sum(amount)::bigint AS total, min(id) AS first_id, count(*) AS charges,
				min(currency) AS currency
			FROM ins WHERE amount > 0 GROUP BY organization_id
		), ledger AS (
			INSERT INTO wallet_transactions (organization_id, kind, amount, currency, balance_after, reason, actor,
				reference, created_at)
			SELECT d.organization_id, 'debit', -d.total, w.currency, w.balance - d.total,
				'usage ' || to_char($3 AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || '–' ||
					to_char($4 AT TIME ZONE 'UTC', 'HH24:MI') || ' UTC, ' || d.charges ||
					CASE d.charges WHEN 1 THEN ' resource' ELSE ' resources' END,
				'system:metering', 'usage:' || d.first_id, $5
			FROM debits d JOIN wallets w ON w.organization_id = d.organization_id
			ORDER BY d.organization_id
			RETURNING 1
		), upd AS (
			UPDATE wallets w SET balance = w.balance - d.total, updated_at = $5
			FROM debits d WHERE w.organization_id = d.organization_id
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM ins), (SELECT coalesce(sum(amount), 0)::bigint FROM ins),
			(SELECT count(*) FROM ledger), (SELECT count(*) FROM upd),
			(SELECT count(*) FROM debits d JOIN wallets w ON w.organization_id = d.organization_id
				WHERE w.currency <> d.currency)`,
		types, ids, start, end, at).Scan(&res.Charges, &res.Amount, &res.Debits, new(int64), &mismatched)
	if err != nil {
		return UsageResult{}, fmt.Errorf("charge usage: %w", mapErr(err))
	}
	if mismatched > 0 {
		return UsageResult{}, fmt.Errorf("charge usage: %d organizations: %w", mismatched, ErrCurrencyMismatch)
	}
	return res, nil
}

// UsageCharge is one resource's charge for one period.
type UsageCharge struct {
	ID             int64
	OrganizationID uuid.UUID
	ResourceType   string
	ResourceID     uuid.UUID
	PeriodStart    time.Time
	PeriodEnd      time.Time
	UnitSeconds    int64
	UnitPrice      int64
	Amount         int64
	Currency       string
	CreatedAt      time.Time
}

const usageChargeColumns = `id, organization_id, resource_type, resource_id, period_start, period_end, unit_seconds,
	unit_price, amount, currency, created_at`

func scanUsageCharge(row pgx.Row) (UsageCharge, error) {
	var u UsageCharge
	err := row.Scan(&u.ID, &u.OrganizationID, &u.ResourceType, &u.ResourceID, &u.PeriodStart, &u.PeriodEnd,
		&u.UnitSeconds, &u.UnitPrice, &u.Amount, &u.Currency, &u.CreatedAt)
	return u, mapErr(err)
}

// UsageCharges lists an organization's charges for periods starting in [from, to), oldest
// first.
func (q *Queries) UsageCharges(ctx context.Context, orgID uuid.UUID, from, to time.Time) ([]UsageCharge, error) {
	rows, err := q.db.Query(ctx, `SELECT `+usageChargeColumns+` FROM usage_charges
		WHERE organization_id = $1 AND period_start >= $2 AND period_start < $3
		ORDER BY period_start, resource_type, resource_id`, orgID, from, to)
	return collect(rows, err, scanUsageCharge)
}

// AllUsageCharges streams every usage charge to fn, for audits and tests.
func (q *Queries) AllUsageCharges(ctx context.Context, fn func(UsageCharge) error) error {
	rows, err := q.db.Query(ctx, `SELECT `+usageChargeColumns+` FROM usage_charges ORDER BY id`)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUsageCharge(rows)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}
