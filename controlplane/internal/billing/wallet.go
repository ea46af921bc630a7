package billing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// ErrInvalid marks input refused before anything changed; the message names the field.
var ErrInvalid = errors.New("invalid")

// ErrCurrencyMismatch means an amount is not in the currency of the organization's wallet.
var ErrCurrencyMismatch = store.ErrCurrencyMismatch

// Transaction kinds of the wallet ledger.
const (
	KindCredit     = "credit"
	KindDebit      = "debit"
	KindRefund     = "refund"
	KindAdjustment = "adjustment"
)

// Entry is money to post to an organization's wallet.
type Entry struct {
	OrganizationID uuid.UUID
	// Amount in minor units: positive for Credit, Debit and Refund (Debit subtracts it);
	// signed for Adjust.
	Amount int64
	// Currency is an ISO 4217 code; the wallet's currency when it exists.
	Currency string
	// Reference names the source, unique across all wallets ("stripe:cs_…" for a top-up, "admin:<id>").
	// Posting a reference again changes nothing. Required.
	Reference string
	// Reason is shown in the ledger; required for refunds and adjustments.
	Reason string
	// Actor is who caused it ("user:<id>", "stripe", "system:metering"). Required.
	Actor string
	// At stamps the row; zero means now.
	At time.Time
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Credit adds e.Amount to the wallet (a top-up). It returns the ledger row and whether it was
// applied now; false when e.Reference was posted before, and then the earlier row. Like the
// others below, it runs in the caller's transaction (q from store.InTx), so the money moves
// with the change that causes it.
func Credit(ctx context.Context, q *store.Queries, e Entry) (store.WalletTransaction, bool, error) {
	return post(ctx, q, KindCredit, e, e.Amount)
}

// Debit subtracts e.Amount from the wallet; the balance may go negative.
func Debit(ctx context.Context, q *store.Queries, e Entry) (store.WalletTransaction, bool, error) {
	return post(ctx, q, KindDebit, e, -e.Amount)
}

// Refund gives e.Amount back (e.g. for an outage); e.Reason is required.
func Refund(ctx context.Context, q *store.Queries, e Entry) (store.WalletTransaction, bool, error) {
	return post(ctx, q, KindRefund, e, e.Amount)
}

// Adjust corrects the balance by the signed e.Amount (an admin's manual change); e.Reason
// is required.
func Adjust(ctx context.Context, q *store.Queries, e Entry) (store.WalletTransaction, bool, error) {
	return post(ctx, q, KindAdjustment, e, e.Amount)
}

func post(ctx context.Context, q *store.Queries, kind string, e Entry, signed int64) (store.WalletTransaction, bool, error) {
	if err := validate(kind, e); err != nil {
		return store.WalletTransaction{}, false, fmt.Errorf("%s wallet: %w", kind, err)
	}
	w, err := q.LockWallet(ctx, e.OrganizationID, e.Currency)
	if err != nil {
		return store.WalletTransaction{}, false, fmt.Errorf("%s wallet: %w", kind, err)
	}
	if w.Currency != e.Currency {
		return store.WalletTransaction{}, false, fmt.Errorf("%s wallet: %s into a %s wallet: %w", kind, e.Currency, w.Currency,
			ErrCurrencyMismatch)
	}
	t, applied, err := q.AppendWalletTransaction(ctx, store.WalletTransaction{
		OrganizationID: e.OrganizationID, Kind: kind, Amount: signed, Currency: e.Currency,
		Reason: e.Reason, Actor: e.Actor, Reference: e.Reference, CreatedAt: e.At,
	})
	if err != nil {
		return store.WalletTransaction{}, false, fmt.Errorf("%s wallet: %w", kind, err)
	}
	if !applied && (t.OrganizationID != e.OrganizationID || t.Kind != kind || t.Amount != signed) {
		return store.WalletTransaction{}, false, fmt.Errorf("%s wallet: reference %q was used for another transaction: %w",
			kind, e.Reference, store.ErrConflict)
	}
	return t, applied, nil
}

func validate(kind string, e Entry) error {
	var errs []error
	if e.OrganizationID == uuid.Nil {
		errs = append(errs, fmt.Errorf("%w: organization_id is required", ErrInvalid))
	}
	switch {
	case kind == KindAdjustment && e.Amount == 0:
		errs = append(errs, fmt.Errorf("%w: amount must not be 0", ErrInvalid))
	case kind != KindAdjustment && e.Amount <= 0:
		errs = append(errs, fmt.Errorf("%w: amount must be positive", ErrInvalid))
	}
	if !currencyCode.MatchString(e.Currency) {
		errs = append(errs, fmt.Errorf("%w: currency must be a 3-letter ISO 4217 code", ErrInvalid))
	}
	if e.Reference == "" || len(e.Reference) > 200 {
		errs = append(errs, fmt.Errorf("%w: reference must be 1 to 200 characters", ErrInvalid))
	}
	if e.Actor == "" || len(e.Actor) > 200 {
		errs = append(errs, fmt.Errorf("%w: actor must be 1 to 200 characters", ErrInvalid))
	}
	if (kind == KindAdjustment || kind == KindRefund) && e.Reason == "" {
		errs = append(errs, fmt.Errorf("%w: reason is required for a %s", ErrInvalid, kind))
	}
	if len(e.Reason) > 500 {
		errs = append(errs, fmt.Errorf("%w: reason must be at most 500 characters", ErrInvalid))
	}
	return errors.Join(errs...)
}
