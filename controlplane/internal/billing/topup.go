package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/billing/payment"
	"skypanel/controlplane/internal/store"
)

// PaymentResult is what HandlePaymentEvent did.
type PaymentResult struct {
	// Duplicate: the event was handled before, and nothing changed.
	Duplicate bool
	// TopUp is the top-up the event is about, as it is now; nil for events about no
	// top-up of this platform (another type, or another system's checkout).
	TopUp *store.TopUp
	// Credited: the wallet was credited now.
	Credited bool
	// Refused says why a payment the event reports was not credited (an amount or currency
	// other than the top-up's, a top-up no longer open). Someone should look: money may
	// have moved.
	Refused string
}

// HandlePaymentEvent acts on a verified event of the payment provider named provider, once
// per event id: it records the event (an id seen before changes nothing), locks the top-up
// and, when the event reports the payment of an open top-up of that amount and currency,
// credits the wallet (reference "<provider>:<checkout id>", so two events about the same
// checkout credit it once), marks the top-up paid and writes a wallet.topped_up activity
// row. An expired or failed checkout ends an open top-up. A payment that does not match
// the top-up is not credited: the top-up is marked failed and the result says why.
//
// It must run in a transaction (q from store.InTx) — the event record, the credit and the
// top-up change commit together — and it is the only way a top-up completes, for webhooks
// and the test provider's page alike.
func HandlePaymentEvent(ctx context.Context, q *store.Queries, provider string, e payment.Event) (PaymentResult, error) {
	if q.Tx() == nil {
		return PaymentResult{}, errors.New("handle payment event: outside a transaction")
	}
	if provider == "" || e.ID == "" {
		return PaymentResult{}, fmt.Errorf("handle payment event: %w: provider and event id are required", ErrInvalid)
	}
	fresh, err := q.InsertPaymentEvent(ctx, provider, e.ID, e.Type)
	if err != nil {
		return PaymentResult{}, fmt.Errorf("handle payment event %s: %w", e.ID, err)
	}
	if !fresh {
		return PaymentResult{Duplicate: true}, nil
	}
	if e.Outcome == "" {
		return PaymentResult{}, nil
	}

	t, err := lockTopUp(ctx, q, provider, e)
	if errors.Is(err, store.ErrNotFound) {
		return PaymentResult{}, nil // another system's checkout on the same account
	}
	if err != nil {
		return PaymentResult{}, fmt.Errorf("handle payment event %s: %w", e.ID, err)
	}
	res := PaymentResult{TopUp: &t}
	if t.Status != store.TopUpOpen {
		if e.Outcome == payment.Paid && t.Status != store.TopUpPaid {
			res.Refused = fmt.Sprintf("a payment arrived for a top-up that is %s", t.Status)
		}
		return res, nil
	}
	externalID := e.ExternalID
	if externalID == "" {
		externalID = t.ExternalID
	}

	status := store.TopUpExpired
	var txID *int64
	var credit store.WalletTransaction
	switch e.Outcome {
	case payment.Failed:
		status = store.TopUpFailed
	case payment.Paid:
		status = store.TopUpFailed
		switch {
		case externalID == "":
			res.Refused = "the payment names no checkout"
		case e.Amount != t.Amount || e.Currency != t.Currency:
			res.Refused = fmt.Sprintf("paid %d %s for a top-up of %d %s", e.Amount, e.Currency, t.Amount, t.Currency)
		default:
			credit, res.Credited, err = Credit(ctx, q, Entry{OrganizationID: t.OrganizationID, Amount: t.Amount,
				Currency: t.Currency, Reference: provider + ":" + externalID, Reason: "top-up", Actor: "payment:" + provider})
			switch {
			case errors.Is(err, ErrCurrencyMismatch):
				res.Refused = fmt.Sprintf("paid in %s into a wallet in another currency", t.Currency)
			case err != nil:
				return PaymentResult{}, fmt.Errorf("handle payment event %s: %w", e.ID, err)
			default:
				status, txID = store.TopUpPaid, &credit.ID
			}
		}
	}
	if t, err = q.CompleteTopUp(ctx, t.ID, status, txID, externalID); err != nil {
		return PaymentResult{}, fmt.Errorf("handle payment event %s: %w", e.ID, err)
	}
	res.TopUp = &t
	if status != store.TopUpPaid {
		return res, nil
	}
	if _, err := q.InsertActivity(ctx, store.ActivityEvent{OrganizationID: &t.OrganizationID, ActorKind: store.ActorSystem,
		EventType: "wallet.topped_up", EntityType: "wallet", EntityID: t.OrganizationID.String(),
		Metadata: map[string]string{"top_up_id": t.ID.String(), "provider": provider, "amount": fmt.Sprint(t.Amount),
			"currency": t.Currency, "balance": fmt.Sprint(credit.BalanceAfter)}}); err != nil {
		return PaymentResult{}, fmt.Errorf("handle payment event %s: %w", e.ID, err)
	}
	return res, nil
}

// lockTopUp finds the event's top-up: by the id the provider echoes back, else by the
// checkout id. ErrNotFound when it is not one of provider's, or names another checkout.
func lockTopUp(ctx context.Context, q *store.Queries, provider string, e payment.Event) (store.TopUp, error) {
	if e.TopUpID == uuid.Nil {
		if e.ExternalID == "" {
			return store.TopUp{}, store.ErrNotFound
		}
		return q.LockTopUpByExternalID(ctx, provider, e.ExternalID)
	}
	t, err := q.LockTopUp(ctx, e.TopUpID)
	if err != nil {
		return store.TopUp{}, err
	}
	if t.Provider != provider || (t.ExternalID != "" && e.ExternalID != "" && t.ExternalID != e.ExternalID) {
		return store.TopUp{}, store.ErrNotFound
	}
	return t, nil
}
