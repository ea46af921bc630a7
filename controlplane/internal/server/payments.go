package server

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/billing/payment"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/store"
)

// maxWebhookBytes bounds a webhook's body; Stripe's checkout events are a few kilobytes.
const maxWebhookBytes = 64 << 10

// newPaymentProvider builds the payment provider the config names; nil for none.
func newPaymentProvider(cfg *config.Config) (payment.Provider, error) {
	switch cfg.PaymentProvider {
	case payment.StripeName:
		p, err := payment.NewStripe(payment.StripeOptions{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret})
		if err != nil {
			return nil, err
		}
		return p, nil
	case payment.TestName:
		p, err := payment.NewTest(cfg.PublicURL)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, nil
}

// payments serves what a payment provider calls or shows: its webhook, and the test
// provider's checkout pages.
type payments struct {
	store     *store.Store
	provider  payment.Provider
	publicURL *url.URL
	logger    *slog.Logger
}

// registerPayments mounts the provider's routes on mux: POST /webhooks/<provider> for
// providers with webhooks, and the checkout pages of the test provider. Nothing for nil.
func registerPayments(mux *http.ServeMux, st *store.Store, provider payment.Provider, publicURL string, logger *slog.Logger) error {
	if provider == nil {
		return nil
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return fmt.Errorf("register payments: public url: %w", err)
	}
	h := &payments{store: st, provider: provider, publicURL: u, logger: logger}
	if test, ok := provider.(*payment.Test); ok {
		logger.Warn("payment provider test: top-ups are paid on a local page, without money")
		mux.HandleFunc("GET "+payment.TestCheckoutPath+"{id}", func(w http.ResponseWriter, r *http.Request) { h.testPage(w, r, test) })
		mux.HandleFunc("POST "+payment.TestCheckoutPath+"{id}", func(w http.ResponseWriter, r *http.Request) { h.testSubmit(w, r, test) })
		return nil
	}
	mux.HandleFunc("POST /webhooks/"+provider.Name(), h.webhook)
	return nil
}

// webhook handles a provider's notification: 400 when it does not verify (nothing changes),
// 500 when it could not be recorded (the provider retries), else 200, also for events that
// change nothing or were handled before.
func (h *payments) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	e, err := h.provider.ParseWebhook(r.Header, body)
	if err != nil {
		h.logger.Warn("webhook refused", "provider", h.provider.Name(), "err", err)
		http.Error(w, "webhook does not verify", http.StatusBadRequest)
		return
	}
	if err := h.handle(r, e); err != nil {
		http.Error(w, "internal error; retry", http.StatusInternalServerError)
		return
	}
	w.Write([]byte("ok\n"))
}

// handle acts on a verified event in one transaction, and logs what happened.
func (h *payments) handle(r *http.Request, e payment.Event) error {
	ctx := r.Context()
	var res billing.PaymentResult
	err := h.store.InTx(ctx, func(q *store.Queries) error {
		var err error
		res, err = billing.HandlePaymentEvent(ctx, q, h.provider.Name(), e)
		return err
	})
	log := h.logger.With("provider", h.provider.Name(), "event_id", e.ID, "event_type", e.Type)
	if res.TopUp != nil {
		log = log.With("top_up_id", res.TopUp.ID, "organization_id", res.TopUp.OrganizationID, "status", res.TopUp.Status)
	}
	switch {
	case err != nil:
		log.Error("payment event not handled", "err", err)
	case res.Refused != "":
		log.Error("payment not credited: check it with the provider", "reason", res.Refused)
	case res.Credited:
		log.Info("wallet topped up", "amount", res.TopUp.Amount, "currency", res.TopUp.Currency)
	case res.Duplicate:
		log.Debug("payment event handled before")
	default:
		log.Debug("payment event handled")
	}
	return err
}

// testCheckoutPage is the test provider's checkout page.
var testCheckoutPage = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test checkout · SkyPanel</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #1f2933; }
.banner { background: #fff3c4; border: 1px solid #e9b949; border-radius: .5rem; padding: .75rem 1rem; font-weight: 600; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; }
dt { color: #616e7c; }
dd { margin: 0; }
button { font: inherit; padding: .5rem 1.25rem; border-radius: .375rem; border: 1px solid #9aa5b1; background: #fff; cursor: pointer; }
button.pay { background: #2563eb; border-color: #2563eb; color: #fff; margin-right: .5rem; }
</style>
</head>
<body>
<p class="banner" role="alert">Test mode — no money moves.</p>
<h1>Top up the wallet</h1>
<dl>
<dt>Organization</dt><dd>{{.Organization}}</dd>
<dt>Amount</dt><dd>{{.Amount}}</dd>
<dt>Currency</dt><dd>{{.Currency}}</dd>
<dt>Status</dt><dd>{{.Status}}</dd>
</dl>
{{if .Open}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="token" value="{{.Token}}">
<button class="pay" type="submit" name="action" value="pay">Pay</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form>
{{else}}
<p>This top-up is {{.Status}}. <a href="{{.Back}}">Back to SkyPanel</a></p>
{{end}}
</body>
</html>
`))

type testCheckoutView struct {
	Organization, Amount, Currency, Status string
	Open                                   bool
	Action, Token, Back                    string
}

// testPage shows a test top-up with its Pay and Cancel buttons while it is open.
func (h *payments) testPage(w http.ResponseWriter, r *http.Request, test *payment.Test) {
	t, ok := h.testTopUp(w, r)
	if !ok {
		return
	}
	h.renderTestPage(w, r, test, t, http.StatusOK)
}

// testSubmit pays or cancels an open test top-up, the way a provider's webhook does, then
// sends the payer back to the dashboard.
func (h *payments) testSubmit(w http.ResponseWriter, r *http.Request, test *payment.Test) {
	// The form is only ever posted by the page itself: refuse other sites' (besides the
	// token, which only the page shows).
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		http.Error(w, "cross-site form refused", http.StatusForbidden)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, h.publicURL.Scheme+"://"+h.publicURL.Host) {
		http.Error(w, "cross-site form refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable form", http.StatusBadRequest)
		return
	}
	t, ok := h.testTopUp(w, r)
	if !ok {
		return
	}
	if !test.CheckFormToken(t.ID, r.PostForm.Get("token")) {
		http.Error(w, "this form has expired: reload the page", http.StatusForbidden)
		return
	}
	outcome, back, status := payment.Paid, "success", store.TopUpPaid
	switch r.PostForm.Get("action") {
	case "pay":
	case "cancel":
		outcome, back, status = payment.Expired, "cancel", store.TopUpExpired
	default:
		http.Error(w, "action must be pay or cancel", http.StatusBadRequest)
		return
	}
	if t.Status != store.TopUpOpen {
		if t.Status == status { // the same button pressed twice
			http.Redirect(w, r, h.returnURL(r, back), http.StatusSeeOther)
			return
		}
		h.renderTestPage(w, r, test, t, http.StatusConflict)
		return
	}
	e, err := test.Event(t.ID, outcome, t.Amount, t.Currency)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.handle(r, e); err != nil {
		http.Error(w, "internal error; try again", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, h.returnURL(r, back), http.StatusSeeOther)
}

// testTopUp reads the test top-up the path names, answering 404 when there is none.
func (h *payments) testTopUp(w http.ResponseWriter, r *http.Request) (store.TopUp, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return store.TopUp{}, false
	}
	t, err := h.store.TopUp(r.Context(), id)
	if err == nil && t.Provider != payment.TestName {
		err = store.ErrNotFound
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
		return store.TopUp{}, false
	case err != nil:
		h.logger.Error("read test top-up", "top_up_id", id, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return store.TopUp{}, false
	}
	return t, true
}

func (h *payments) renderTestPage(w http.ResponseWriter, r *http.Request, test *payment.Test, t store.TopUp, code int) {
	org, err := h.store.OrganizationByID(r.Context(), t.OrganizationID)
	if err != nil {
		h.logger.Error("read test top-up organization", "top_up_id", t.ID, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	view := testCheckoutView{Organization: org.Name, Amount: formatMinor(t.Amount), Currency: t.Currency, Status: t.Status,
		Open: t.Status == store.TopUpOpen, Token: test.FormToken(t.ID), Back: h.returnURL(r, "success"),
		Action: payment.TestCheckoutPath + t.ID.String() + "?" + r.URL.RawQuery}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// No scripts, no framing (a Pay button must not be clickjacked), forms only to here.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	if err := testCheckoutPage.Execute(w, view); err != nil {
		h.logger.Warn("render test checkout", "err", err)
	}
}

// returnURL is the page's return URL of that kind (success or cancel) when it is on the
// control plane's origin, else the dashboard's home.
func (h *payments) returnURL(r *http.Request, kind string) string {
	home := h.publicURL.JoinPath("/").String()
	u, err := url.Parse(r.URL.Query().Get(kind))
	if err != nil || u.User != nil || !strings.EqualFold(u.Scheme, h.publicURL.Scheme) || !strings.EqualFold(u.Host, h.publicURL.Host) {
		return home
	}
	return u.String()
}

// formatMinor shows an amount of minor units with two decimals (as most currencies have).
func formatMinor(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}
