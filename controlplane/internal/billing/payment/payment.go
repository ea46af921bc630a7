// Package payment takes money into wallets through a payment provider: it starts a checkout
// (a page on the provider's side where the payer pays) and turns the provider's notifications
// into verified events. It never sees card data, and it moves no money itself: package billing
// credits the wallet when an event says a checkout was paid (billing.HandlePaymentEvent).
//
// Two providers: Stripe (Stripe Checkout, notified by signed webhooks) and Test, a checkout
// page on the control plane itself where nobody pays anything, for development and browser
// tests.
package payment

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"
)

// ErrBadSignature means a webhook is not provably from the provider: missing, malformed or
// wrong signature, or signed too long ago. Such a request must change nothing.
var ErrBadSignature = errors.New("webhook signature does not verify")

// Provider is a payment provider.
type Provider interface {
	// Name is the provider's short name ("stripe", "test"), stored with each top-up and
	// prefixed to the ledger references of its credits.
	Name() string
	// CreateCheckout starts a payment of c.Amount and returns the page to pay on.
	CreateCheckout(ctx context.Context, c Checkout) (Session, error)
	// ParseWebhook verifies a notification (its headers and raw body) and returns the event
	// it carries; ErrBadSignature when it cannot be verified.
	ParseWebhook(header http.Header, body []byte) (Event, error)
}

// Checkout is a payment to start.
type Checkout struct {
	TopUpID        uuid.UUID
	OrganizationID uuid.UUID
	// Amount in minor units of Currency (an ISO 4217 code, upper case).
	Amount   int64
	Currency string
	// SuccessURL and CancelURL are where the payer is sent back after paying or giving up.
	SuccessURL, CancelURL string
	// CustomerEmail prefills the payer's email on the provider's page; optional.
	CustomerEmail string
}

// Session is a started checkout.
type Session struct {
	// ExternalID is the provider's id of the checkout.
	ExternalID string
	// URL is the page to pay on.
	URL string
}

// Outcome is what an event says happened to a checkout.
type Outcome string

// Outcomes of an event. The zero Outcome is an event to acknowledge and ignore (another type,
// or a checkout that is complete but not paid yet).
const (
	Paid    Outcome = "paid"
	Expired Outcome = "expired"
	Failed  Outcome = "failed"
)

// Event is a verified notification about a checkout.
type Event struct {
	// ID is the provider's event id; an event is acted on once per id.
	ID   string
	Type string
	// Outcome is empty for events that change nothing.
	Outcome Outcome
	// ExternalID is the checkout's id at the provider (Session.ExternalID).
	ExternalID string
	// TopUpID is the top-up the checkout was started for, as the provider echoes it back;
	// uuid.Nil when the checkout was not started by SkyPanel.
	TopUpID uuid.UUID
	// Amount (minor units) and Currency (upper case) are what was paid, for Paid events.
	Amount   int64
	Currency string
}
