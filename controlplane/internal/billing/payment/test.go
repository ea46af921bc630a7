package payment

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/uuid"
)

// TestName is the test provider's name.
const TestName = "test"

// TestCheckoutPath is where the test provider's checkout pages are served, followed by the
// top-up id.
const TestCheckoutPath = "/billing/test-checkout/"

// Test is a provider for development and browser tests: its checkout page is served by the
// control plane itself (TestCheckoutPath), says that no money moves, and pays or cancels the
// top-up when its buttons are pressed, through the same code the Stripe webhook goes
// through. It takes no webhooks.
type Test struct {
	publicURL string
	// key signs the pages' forms (FormToken). It is made at start: a form rendered before
	// a restart is refused, and reloading the page fixes that.
	key []byte
}

// NewTest returns the test provider; publicURL is the control plane's public URL (no
// trailing slash).
func NewTest(publicURL string) (*Test, error) {
	if u, err := url.Parse(publicURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("new test provider: %q is not a URL", publicURL)
	}
	return &Test{publicURL: publicURL, key: []byte(rand.Text())}, nil
}

// Name implements Provider.
func (t *Test) Name() string { return TestName }

// CreateCheckout returns the control plane's own checkout page for the top-up, carrying the
// return URLs in its query (the page checks they stay on the control plane's origin).
func (t *Test) CreateCheckout(_ context.Context, c Checkout) (Session, error) {
	q := url.Values{"success": {c.SuccessURL}, "cancel": {c.CancelURL}}
	return Session{ExternalID: c.TopUpID.String(), URL: t.publicURL + TestCheckoutPath + c.TopUpID.String() + "?" + q.Encode()}, nil
}

// ParseWebhook implements Provider: the test provider has no webhooks.
func (t *Test) ParseWebhook(http.Header, []byte) (Event, error) {
	return Event{}, fmt.Errorf("parse test webhook: %w: the test provider takes no webhooks", ErrBadSignature)
}

// FormToken is the value the checkout page's form of a top-up must send back. Only the
// page can show it, so another site cannot post the form on a visitor's behalf.
func (t *Test) FormToken(topUpID uuid.UUID) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("test-checkout:" + topUpID.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckFormToken reports whether token is FormToken(topUpID).
func (t *Test) CheckFormToken(topUpID uuid.UUID, token string) bool {
	return hmac.Equal([]byte(token), []byte(t.FormToken(topUpID)))
}

// Event is what pressing a button of the checkout page means: outcome Paid (amount and
// currency: the top-up's) or Expired (cancelled). Its id is the same for every press of the
// same button, so pressing twice acts once.
func (t *Test) Event(topUpID uuid.UUID, outcome Outcome, amount int64, currency string) (Event, error) {
	if outcome != Paid && outcome != Expired {
		return Event{}, errors.New("test checkout event: outcome must be paid or expired")
	}
	e := Event{ID: "test:" + string(outcome) + ":" + topUpID.String(), Type: "test_checkout." + string(outcome),
		Outcome: outcome, ExternalID: topUpID.String(), TopUpID: topUpID}
	if outcome == Paid {
		e.Amount, e.Currency = amount, currency
	}
	return e, nil
}
