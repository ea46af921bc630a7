package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// StripeOptions configure NewStripe.
type StripeOptions struct {
	// SecretKey is the API secret key (sk_live_…, sk_test_… or a restricted rk_… key that
	// may write Checkout Sessions). Required.
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint (whsec_…). Required.
	WebhookSecret string
	// APIURL is the API's base URL. Default https://api.stripe.com; tests point it at a
	// stand-in server.
	APIURL string
	// HTTPClient makes the API requests. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Tolerance is how old a webhook's signature may be; older ones are refused so a
	// captured request cannot be replayed later. Default 5 minutes (Stripe's).
	Tolerance time.Duration
}

// Stripe takes payments with Stripe Checkout: a hosted payment page per top-up, confirmed
// by signed webhooks.
type Stripe struct {
	client    *stripe.Client
	secret    string
	tolerance time.Duration
}

// StripeName is the Stripe provider's name.
const StripeName = "stripe"

// NewStripe returns the Stripe provider.
func NewStripe(opts StripeOptions) (*Stripe, error) {
	if opts.SecretKey == "" || opts.WebhookSecret == "" {
		return nil, errors.New("new stripe provider: SecretKey and WebhookSecret are required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = webhook.DefaultTolerance
	}
	cfg := &stripe.BackendConfig{
		HTTPClient: opts.HTTPClient,
		// Errors are returned to the caller, which logs them; the library logs nothing.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if opts.APIURL != "" {
		cfg.URL = stripe.String(strings.TrimRight(opts.APIURL, "/"))
	}
	backends := &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, cfg)}
	return &Stripe{
		client:    stripe.NewClient(opts.SecretKey, stripe.WithBackends(backends)),
		secret:    opts.WebhookSecret,
		tolerance: opts.Tolerance,
	}, nil
}

// Name implements Provider.
func (s *Stripe) Name() string { return StripeName }

// stripeProductName is the line item the payer sees on Stripe's page.
const stripeProductName = "SkyPanel wallet top-up"

// CreateCheckout creates a Checkout Session in payment mode for one line item of c.Amount.
// The top-up id goes into client_reference_id and metadata, which the webhook echoes back,
// and is the request's idempotency key, so a retried request makes one session.
func (s *Stripe) CreateCheckout(ctx context.Context, c Checkout) (Session, error) {
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(c.TopUpID.String()),
		SuccessURL:        stripe.String(c.SuccessURL),
		CancelURL:         stripe.String(c.CancelURL),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:    stripe.String(strings.ToLower(c.Currency)),
				UnitAmount:  stripe.Int64(c.Amount),
				ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripe.String(stripeProductName)},
			},
		}},
		Metadata: map[string]string{"top_up_id": c.TopUpID.String(), "organization_id": c.OrganizationID.String()},
	}
	if c.CustomerEmail != "" {
		params.CustomerEmail = stripe.String(c.CustomerEmail)
	}
	params.SetIdempotencyKey("skypanel-top-up-" + c.TopUpID.String())
	cs, err := s.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return Session{}, fmt.Errorf("create stripe checkout session: %w", err)
	}
	if cs.ID == "" || cs.URL == "" {
		return Session{}, errors.New("create stripe checkout session: the answer has no id or url")
	}
	return Session{ExternalID: cs.ID, URL: cs.URL}, nil
}

// ParseWebhook verifies the Stripe-Signature header (HMAC-SHA256 with the endpoint's secret,
// within the tolerance) and reads a checkout.session.* event. Other event types come back
// with no Outcome.
//
// The event's API version is not required to match the library's: only a few fields of
// the session are read, and they are the same in every version, so an endpoint created on
// another version does not lose payments.
func (s *Stripe) ParseWebhook(header http.Header, body []byte) (Event, error) {
	if err := webhook.ValidatePayloadWithTolerance(body, header.Get("Stripe-Signature"), s.secret, s.tolerance); err != nil {
		return Event{}, fmt.Errorf("parse stripe webhook: %w: %w", ErrBadSignature, err)
	}
	var se stripe.Event
	if err := json.Unmarshal(body, &se); err != nil {
		return Event{}, fmt.Errorf("parse stripe webhook: %w", err)
	}
	if se.ID == "" {
		return Event{}, errors.New("parse stripe webhook: the event has no id")
	}
	e := Event{ID: se.ID, Type: string(se.Type)}
	var outcome Outcome
	switch se.Type {
	case stripe.EventTypeCheckoutSessionCompleted, stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		outcome = Paid
	case stripe.EventTypeCheckoutSessionAsyncPaymentFailed:
		outcome = Failed
	case stripe.EventTypeCheckoutSessionExpired:
		outcome = Expired
	default:
		return e, nil
	}
	if se.Data == nil {
		return Event{}, fmt.Errorf("parse stripe webhook %s: no data", se.ID)
	}
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(se.Data.Raw, &cs); err != nil {
		return Event{}, fmt.Errorf("parse stripe webhook %s: checkout session: %w", se.ID, err)
	}
	if cs.Mode != stripe.CheckoutSessionModePayment || cs.ID == "" {
		return e, nil // not a top-up
	}
	// A completed session paid by a delayed method (a bank debit) is not paid yet:
	// async_payment_succeeded or _failed follows.
	if outcome == Paid && cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
		return e, nil
	}
	e.Outcome, e.ExternalID = outcome, cs.ID
	e.Amount, e.Currency = cs.AmountTotal, strings.ToUpper(string(cs.Currency))
	ref := cs.ClientReferenceID
	if ref == "" {
		ref = cs.Metadata["top_up_id"]
	}
	if id, err := uuid.Parse(ref); err == nil {
		e.TopUpID = id
	}
	return e, nil
}
