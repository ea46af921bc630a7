package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Top-ups (payments into a wallet through a payment provider) and the provider events
// handled. The rules live in package billing (billing.HandlePaymentEvent).

// TopUp statuses.
const (
	TopUpOpen    = "open"
	TopUpPaid    = "paid"
	TopUpExpired = "expired"
	TopUpFailed  = "failed"
)

// TopUp is a payment into an organization's wallet through a payment provider.
type TopUp struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Provider       string
	// ExternalID is the provider's checkout id; empty until the provider made the checkout.
	ExternalID string
	Amount     int64
	Currency   string
	// Status is open, paid, expired or failed.
	Status      string
	CheckoutURL string
	CreatedBy   *uuid.UUID
	CreatedAt   time.Time
	CompletedAt *time.Time
	// TransactionID is the wallet credit of a paid top-up.
	TransactionID *int64
}

const topUpColumns = `id, organization_id, provider, coalesce(external_id, ''), amount, currency, status, checkout_url,
	created_by, created_at, completed_at, transaction_id`

func scanTopUp(row pgx.Row) (TopUp, error) {
	var t TopUp
	err := row.Scan(&t.ID, &t.OrganizationID, &t.Provider, &t.ExternalID, &t.Amount, &t.Currency, &t.Status,
		&t.CheckoutURL, &t.CreatedBy, &t.CreatedAt, &t.CompletedAt, &t.TransactionID)
	return t, mapErr(err)
}

// InsertTopUp records an open top-up (t's id, status and times are set by the database).
func (q *Queries) InsertTopUp(ctx context.Context, t TopUp) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `
		INSERT INTO top_ups (organization_id, provider, amount, currency, created_by)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+topUpColumns,
		t.OrganizationID, t.Provider, t.Amount, t.Currency, t.CreatedBy))
}

// SetTopUpCheckout records the provider's checkout of an open top-up; ErrNotFound when the
// top-up is not open.
func (q *Queries) SetTopUpCheckout(ctx context.Context, id uuid.UUID, externalID, checkoutURL string) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `
		UPDATE top_ups SET external_id = $2, checkout_url = $3
		WHERE id = $1 AND status = 'open' RETURNING `+topUpColumns, id, externalID, checkoutURL))
}

// TopUp returns a top-up by id.
func (q *Queries) TopUp(ctx context.Context, id uuid.UUID) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `SELECT `+topUpColumns+` FROM top_ups WHERE id = $1`, id))
}

// LockTopUp returns a top-up by id, locked until the transaction ends.
func (q *Queries) LockTopUp(ctx context.Context, id uuid.UUID) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `SELECT `+topUpColumns+` FROM top_ups WHERE id = $1 FOR UPDATE`, id))
}

// LockTopUpByExternalID returns the top-up of a provider's checkout, locked until the
// transaction ends.
func (q *Queries) LockTopUpByExternalID(ctx context.Context, provider, externalID string) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `SELECT `+topUpColumns+` FROM top_ups
		WHERE provider = $1 AND external_id = $2 FOR UPDATE`, provider, externalID))
}

// CompleteTopUp ends an open top-up with status (paid, with the credit's transaction id;
// expired or failed, with nil), and records its checkout id if it had none. ErrNotFound
// when the top-up is not open.
func (q *Queries) CompleteTopUp(ctx context.Context, id uuid.UUID, status string, transactionID *int64, externalID string) (TopUp, error) {
	return scanTopUp(q.db.QueryRow(ctx, `
		UPDATE top_ups SET status = $2, transaction_id = $3, completed_at = now(),
			external_id = coalesce(external_id, nullif($4, ''))
		WHERE id = $1 AND status = 'open' RETURNING `+topUpColumns, id, status, transactionID, externalID))
}

// TopUps lists an organization's latest top-ups, newest first.
func (q *Queries) TopUps(ctx context.Context, orgID uuid.UUID, limit int) ([]TopUp, error) {
	rows, err := q.db.Query(ctx, `SELECT `+topUpColumns+` FROM top_ups
		WHERE organization_id = $1 ORDER BY created_at DESC, id LIMIT $2`, orgID, limit)
	return collect(rows, err, scanTopUp)
}

// InsertPaymentEvent records that a provider's event is being handled, in the transaction
// that acts on it. It returns false, changing nothing, when the event was recorded before;
// a concurrent delivery of the same event waits here until the first one's transaction ends.
func (q *Queries) InsertPaymentEvent(ctx context.Context, provider, eventID, eventType string) (bool, error) {
	tag, err := q.db.Exec(ctx, `INSERT INTO payment_events (provider, event_id, type) VALUES ($1, $2, $3)
		ON CONFLICT (provider, event_id) DO NOTHING`, provider, eventID, eventType)
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}
