package payment_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82/webhook"

	"skypanel/controlplane/internal/billing/payment"
)

const webhookSecret = "whsec_test_secret"

// TestStripeCreateCheckoutSendsOneLineItemOfTheAmount points the client at a stand-in for
// the Stripe API and checks the Checkout Session it asks for.
func TestStripeCreateCheckoutSendsOneLineItemOfTheAmount(t *testing.T) {
	var got http.Request
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		got = *r
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": "cs_test_123", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_123"}`))
	}))
	defer api.Close()
	s, err := payment.NewStripe(payment.StripeOptions{SecretKey: "sk_test_key", WebhookSecret: webhookSecret, APIURL: api.URL})
	require.NoError(t, err)

	topUp, org := uuid.New(), uuid.New()
	sess, err := s.CreateCheckout(context.Background(), payment.Checkout{TopUpID: topUp, OrganizationID: org, Amount: 2500,
		Currency: "EUR", SuccessURL: "https://panel.example.com/billing?checkout=success",
		CancelURL: "https://panel.example.com/billing?checkout=cancel", CustomerEmail: "owner@example.com"})
	require.NoError(t, err)
	require.Equal(t, payment.Session{ExternalID: "cs_test_123", URL: "https://checkout.stripe.com/c/pay/cs_test_123"}, sess)

	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/v1/checkout/sessions", got.URL.Path)
	require.Equal(t, "Bearer sk_test_key", got.Header.Get("Authorization"))
	require.Equal(t, "skypanel-top-up-"+topUp.String(), got.Header.Get("Idempotency-Key"), "a retried request makes one session")
	want := map[string]string{
		"mode":                                          "payment",
		"client_reference_id":                           topUp.String(),
		"metadata[top_up_id]":                           topUp.String(),
		"metadata[organization_id]":                     org.String(),
		"success_url":                                   "https://panel.example.com/billing?checkout=success",
		"cancel_url":                                    "https://panel.example.com/billing?checkout=cancel",
		"customer_email":                                "owner@example.com",
		"line_items[0][quantity]":                       "1",
		"line_items[0][price_data][currency]":           "eur",
		"line_items[0][price_data][unit_amount]":        "2500",
		"line_items[0][price_data][product_data][name]": "SkyPanel wallet top-up",
	}
	for k, v := range want {
		require.Equal(t, v, got.PostForm.Get(k), k)
	}
	require.Empty(t, got.PostForm.Get("line_items[1][quantity]"), "one line item")
}

func TestStripeCreateCheckoutReportsAPIErrors(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error": {"type": "invalid_request_error", "message": "Invalid currency: xyz"}}`))
	}))
	defer api.Close()
	s, err := payment.NewStripe(payment.StripeOptions{SecretKey: "sk_test_key", WebhookSecret: webhookSecret, APIURL: api.URL})
	require.NoError(t, err)
	_, err = s.CreateCheckout(context.Background(), payment.Checkout{TopUpID: uuid.New(), Amount: 100, Currency: "XYZ"})
	require.ErrorContains(t, err, "Invalid currency")
}

// sessionEvent builds a Stripe event about a checkout session, as Stripe sends it.
func sessionEvent(id, typ string, session map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2025-01-27.acacia",
		"created": time.Now().Unix(), "data": map[string]any{"object": session}})
	return b
}

func signed(body []byte, secret string, at time.Time) http.Header {
	p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
	return http.Header{"Stripe-Signature": {p.Header}}
}

func TestStripeWebhooksAreVerified(t *testing.T) {
	s, err := payment.NewStripe(payment.StripeOptions{SecretKey: "sk_test_key", WebhookSecret: webhookSecret})
	require.NoError(t, err)
	body := sessionEvent("evt_1", "checkout.session.expired", map[string]any{"id": "cs_1", "object": "checkout.session", "mode": "payment"})

	e, err := s.ParseWebhook(signed(body, webhookSecret, time.Now()), body)
	require.NoError(t, err)
	require.Equal(t, "evt_1", e.ID)

	for _, c := range []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"no signature is refused", http.Header{}, body},
		{"another secret's signature is refused", signed(body, "whsec_other", time.Now()), body},
		{"a signature from long ago is refused (no replays)", signed(body, webhookSecret, time.Now().Add(-time.Hour)), body},
		{"a changed body is refused", signed(body, webhookSecret, time.Now()),
			sessionEvent("evt_1", "checkout.session.completed", map[string]any{"id": "cs_1", "mode": "payment"})},
		{"a malformed header is refused", http.Header{"Stripe-Signature": {"garbage"}}, body},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.ParseWebhook(c.header, c.body)
			require.ErrorIs(t, err, payment.ErrBadSignature)
		})
	}
}

func TestStripeWebhookEventsSayWhatHappenedToTheCheckout(t *testing.T) {
	s, err := payment.NewStripe(payment.StripeOptions{SecretKey: "sk_test_key", WebhookSecret: webhookSecret})
	require.NoError(t, err)
	topUp := uuid.New()
	session := func(status string, extra ...any) map[string]any {
		m := map[string]any{"id": "cs_1", "object": "checkout.session", "mode": "payment", "payment_status": status,
			"amount_total": 2500, "currency": "eur", "client_reference_id": topUp.String()}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	paid := payment.Event{Outcome: payment.Paid, ExternalID: "cs_1", TopUpID: topUp, Amount: 2500, Currency: "EUR"}
	for _, c := range []struct {
		name    string
		typ     string
		session map[string]any
		want    payment.Event
	}{
		{"a completed, paid checkout is paid", "checkout.session.completed", session("paid"), paid},
		{"a completed checkout not paid yet changes nothing", "checkout.session.completed", session("unpaid"), payment.Event{}},
		{"a delayed payment that succeeded is paid", "checkout.session.async_payment_succeeded", session("paid"), paid},
		{"a delayed payment that failed fails", "checkout.session.async_payment_failed", session("unpaid"),
			payment.Event{Outcome: payment.Failed, ExternalID: "cs_1", TopUpID: topUp, Currency: "EUR", Amount: 2500}},
		{"an expired checkout expires", "checkout.session.expired", session("unpaid"),
			payment.Event{Outcome: payment.Expired, ExternalID: "cs_1", TopUpID: topUp, Currency: "EUR", Amount: 2500}},
		{"the top-up id is also read from metadata", "checkout.session.completed",
			session("paid", "client_reference_id", nil, "metadata", map[string]string{"top_up_id": topUp.String()}), paid},
		{"a subscription checkout is not a top-up", "checkout.session.completed", session("paid", "mode", "subscription"), payment.Event{}},
		{"other event types change nothing", "payment_intent.succeeded", map[string]any{"id": "pi_1", "object": "payment_intent"},
			payment.Event{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := sessionEvent("evt_9", c.typ, c.session)
			got, err := s.ParseWebhook(signed(body, webhookSecret, time.Now()), body)
			require.NoError(t, err)
			c.want.ID, c.want.Type = "evt_9", c.typ
			require.Equal(t, c.want, got)
		})
	}
}
