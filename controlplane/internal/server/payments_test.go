package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82/webhook"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func post(t *testing.T, target string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

var formToken = regexp.MustCompile(`name="token" value="([^"]+)"`)

func TestTheTestCheckoutPagePaysATopUpOnce(t *testing.T) {
	env := testenv.Start(t, testenv.WithConfig(func(c *config.Config) { c.PaymentProvider = "test" }))
	ctx := context.Background()
	owner := env.NewUser(t, "owner@example.com")
	orgID := env.NewOrg(t, owner, "Acme & Sons")
	c := testenv.Client(env, billingv1connect.NewBillingServiceClient, owner.Token)
	returnURL := env.URL + "/orgs/" + orgID.String() + "/billing"
	start := func() *billingv1.TopUp {
		resp, err := c.CreateTopUp(ctx, connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: orgID.String(),
			Amount: 2500, ReturnUrl: returnURL}))
		require.NoError(t, err)
		return resp.Msg.GetTopUp()
	}
	balance := func() int64 {
		w, err := c.GetWallet(ctx, connect.NewRequest(&billingv1.GetWalletRequest{OrganizationId: orgID.String()}))
		require.NoError(t, err)
		return w.Msg.GetWallet().GetBalance()
	}
	status := func(id string) string {
		list, err := c.ListTopUps(ctx, connect.NewRequest(&billingv1.ListTopUpsRequest{OrganizationId: orgID.String()}))
		require.NoError(t, err)
		for _, tu := range list.Msg.GetTopUps() {
			if tu.GetId() == id {
				return tu.GetStatus()
			}
		}
		t.Fatalf("top-up %s not listed", id)
		return ""
	}

	tu := start()
	code, page, hdr := get(t, tu.GetCheckoutUrl())
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "Test mode — no money moves")
	require.Contains(t, page, "Acme &amp; Sons")
	require.Contains(t, page, "25.00")
	require.Contains(t, page, "USD")
	require.Contains(t, page, `value="pay"`)
	require.Contains(t, page, `value="cancel"`)
	require.Contains(t, hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	m := formToken.FindStringSubmatch(page)
	require.NotNil(t, m, "the form carries a token")
	token := m[1]

	// Other sites cannot post the form, nor can anyone without the page's token.
	resp, _ := post(t, tu.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"pay"}},
		http.Header{"Origin": {"https://evil.example"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = post(t, tu.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"pay"}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = post(t, tu.GetCheckoutUrl(), url.Values{"token": {"forged"}, "action": {"pay"}}, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.EqualValues(t, 0, balance())

	// Pay: the wallet is credited and the payer goes back to the dashboard.
	same := http.Header{"Origin": {env.URL}, "Sec-Fetch-Site": {"same-origin"}}
	resp, _ = post(t, tu.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"pay"}}, same)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	back, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, returnURL, back.Scheme+"://"+back.Host+back.Path)
	require.Equal(t, "success", back.Query().Get("checkout"))
	require.Equal(t, tu.GetId(), back.Query().Get("top_up"))
	require.EqualValues(t, 2500, balance())
	require.Equal(t, "paid", status(tu.GetId()))

	// Pressing Pay again changes nothing; Cancel is too late.
	resp, _ = post(t, tu.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"pay"}}, same)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, page = post(t, tu.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"cancel"}}, same)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, page, "This top-up is paid")
	require.EqualValues(t, 2500, balance())
	txs, err := c.ListTransactions(ctx, connect.NewRequest(&billingv1.ListTransactionsRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Len(t, txs.Msg.GetTransactions(), 1)
	require.Equal(t, "test:"+tu.GetId(), txs.Msg.GetTransactions()[0].GetReference())
	_, page, _ = get(t, tu.GetCheckoutUrl())
	require.NotContains(t, page, `value="pay"`, "a paid top-up's page has no buttons")

	// Cancel another one: it expires and the payer goes back to the cancel page.
	tu2 := start()
	_, page, _ = get(t, tu2.GetCheckoutUrl())
	token2 := formToken.FindStringSubmatch(page)[1]
	resp, _ = post(t, tu2.GetCheckoutUrl(), url.Values{"token": {token}, "action": {"cancel"}}, same)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a token is good for its own top-up only")
	resp, _ = post(t, tu2.GetCheckoutUrl(), url.Values{"token": {token2}, "action": {"cancel"}}, same)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	back, err = url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "cancel", back.Query().Get("checkout"))
	require.Equal(t, "expired", status(tu2.GetId()))
	resp, _ = post(t, tu2.GetCheckoutUrl(), url.Values{"token": {token2}, "action": {"pay"}}, same)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "an expired top-up cannot be paid")
	require.EqualValues(t, 2500, balance())

	// A return URL tampered into another site's sends the payer home instead.
	tu3 := start()
	_, page, _ = get(t, tu3.GetCheckoutUrl())
	token3 := formToken.FindStringSubmatch(page)[1]
	evil := env.URL + "/billing/test-checkout/" + tu3.GetId() + "?success=" + url.QueryEscape("https://evil.example/")
	resp, _ = post(t, evil, url.Values{"token": {token3}, "action": {"pay"}}, same)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, env.URL+"/", resp.Header.Get("Location"))

	code, _, _ = get(t, env.URL+"/billing/test-checkout/"+uuid.NewString())
	require.Equal(t, http.StatusNotFound, code)
}

const stripeSecret = "whsec_skypanel_test"

func stripeEvent(id, typ, session, topUpID string, amount int64) []byte {
	return fmt.Appendf(nil, `{"id": %q, "object": "event", "type": %q, "api_version": "2025-01-27.acacia",
		"data": {"object": {"id": %q, "object": "checkout.session", "mode": "payment", "payment_status": "paid",
		"amount_total": %d, "currency": "usd", "client_reference_id": %q}}}`, id, typ, session, amount, topUpID)
}

func deliver(t *testing.T, env *testenv.Env, body []byte, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.URL+"/webhooks/stripe", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret})
		req.Header.Set("Stripe-Signature", p.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestStripeWebhooksCreditVerifiedPaymentsOnce(t *testing.T) {
	env := testenv.Start(t, testenv.WithConfig(func(c *config.Config) {
		c.PaymentProvider, c.StripeSecretKey, c.StripeWebhookSecret = "stripe", "sk_test_unused", stripeSecret
	}))
	ctx := context.Background()
	org := uuid.New()
	var tu store.TopUp
	require.NoError(t, env.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if tu, err = q.InsertTopUp(ctx, store.TopUp{OrganizationID: org, Provider: "stripe", Amount: 4200, Currency: "USD"}); err != nil {
			return err
		}
		tu, err = q.SetTopUpCheckout(ctx, tu.ID, "cs_test_1", "https://checkout.stripe.com/c/pay/cs_test_1")
		return err
	}))
	balance := func() int64 {
		w, err := env.Store.Wallet(ctx, org)
		if errors.Is(err, store.ErrNotFound) {
			return 0
		}
		require.NoError(t, err)
		return w.Balance
	}
	paid := stripeEvent("evt_1", "checkout.session.completed", "cs_test_1", tu.ID.String(), 4200)

	require.Equal(t, http.StatusBadRequest, deliver(t, env, paid, ""), "unsigned")
	require.Equal(t, http.StatusBadRequest, deliver(t, env, paid, "whsec_someone_else"), "signed with another secret")
	require.EqualValues(t, 0, balance())

	require.Equal(t, http.StatusOK, deliver(t, env, paid, stripeSecret))
	require.EqualValues(t, 4200, balance())
	require.Equal(t, http.StatusOK, deliver(t, env, paid, stripeSecret), "a redelivery is acknowledged")
	require.Equal(t, http.StatusOK, deliver(t, env, stripeEvent("evt_2", "checkout.session.async_payment_succeeded", "cs_test_1",
		tu.ID.String(), 4200), stripeSecret))
	require.Equal(t, http.StatusOK, deliver(t, env, []byte(`{"id": "evt_3", "object": "event", "type": "customer.created",
		"data": {"object": {"id": "cus_1", "object": "customer"}}}`), stripeSecret), "other types are acknowledged")
	require.EqualValues(t, 4200, balance(), "credited once")
	got, err := env.Store.TopUp(ctx, tu.ID)
	require.NoError(t, err)
	require.Equal(t, store.TopUpPaid, got.Status)

	huge := []byte(`{"id": "evt_4", "pad": "` + strings.Repeat("x", 70<<10) + `"}`)
	require.Equal(t, http.StatusBadRequest, deliver(t, env, huge, stripeSecret), "a body over 64 KiB is refused")
}
