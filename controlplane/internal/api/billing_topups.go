package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing/payment"
	"skypanel/controlplane/internal/store"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/workload"
)

// Top-up amounts, in minor units (the schema says the same).
const (
	minTopUp = 100
	maxTopUp = 10_000_000
)

// listTopUpsLimit is how many top-ups ListTopUps returns, newest first.
const listTopUpsLimit = 100

// CreateTopUp starts a payment into the organization's wallet with the platform's payment
// provider and returns the page to pay on. The wallet is credited when the provider confirms
// the payment (billing.HandlePaymentEvent), not here.
func (s *BillingService) CreateTopUp(ctx context.Context, req *connect.Request[billingv1.CreateTopUpRequest]) (*connect.Response[billingv1.CreateTopUpResponse], error) {
	provider := s.opts.Payments
	if provider == nil {
		return nil, failedPrecondition("top-ups are not enabled on this platform")
	}
	orgID := uuid.MustParse(req.Msg.GetOrganizationId())
	var errs workload.FieldErrors
	amount := req.Msg.GetAmount()
	if amount < minTopUp || amount > maxTopUp {
		errs = append(errs, workload.FieldError{Field: "amount", Reason: "must be between 100 and 10000000 minor units"})
	}
	returnURL, err := s.sameOrigin(req.Msg.GetReturnUrl())
	if err != nil {
		errs = append(errs, workload.FieldError{Field: "return_url", Reason: err.Error()})
	}
	if len(errs) > 0 {
		return nil, invalid(errs)
	}

	p := mustPrincipal(ctx)
	var t store.TopUp
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.OrganizationByID(ctx, orgID); err != nil {
			return storeErr("organization", err)
		}
		// The wallet is made now if it is new, so its currency (the top-up's) cannot change
		// under the payment.
		w, err := q.LockWallet(ctx, orgID, s.opts.BillingCurrency)
		if err != nil {
			return storeErr("wallet", err)
		}
		if c := req.Msg.GetCurrency(); c != "" && c != w.Currency {
			return invalid(workload.FieldErrors{{Field: "currency",
				Reason: fmt.Sprintf("must be the organization's wallet currency, %s", w.Currency)}})
		}
		uid := p.UserID
		t, err = q.InsertTopUp(ctx, store.TopUp{OrganizationID: orgID, Provider: provider.Name(), Amount: amount,
			Currency: w.Currency, CreatedBy: &uid})
		return storeErr("top-up", err)
	})
	if err != nil {
		return nil, err
	}

	// The provider is called outside any transaction: no row stays locked while it answers.
	sess, err := provider.CreateCheckout(ctx, payment.Checkout{TopUpID: t.ID, OrganizationID: orgID, Amount: t.Amount,
		Currency: t.Currency, CustomerEmail: p.Email,
		SuccessURL: withQuery(returnURL, "top_up", t.ID.String(), "checkout", "success"),
		CancelURL:  withQuery(returnURL, "top_up", t.ID.String(), "checkout", "cancel")})
	if err != nil {
		s.opts.Logger.Error("create checkout", "provider", provider.Name(), "top_up_id", t.ID, "err", err)
		bg := context.WithoutCancel(ctx)
		ferr := s.opts.Store.InTx(bg, func(q *store.Queries) error {
			_, err := q.CompleteTopUp(bg, t.ID, store.TopUpFailed, nil, "")
			return err
		})
		if ferr != nil {
			s.opts.Logger.Error("mark top-up failed", "top_up_id", t.ID, "err", ferr)
		}
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the payment provider did not answer; try again later"))
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if t, err = q.SetTopUpCheckout(ctx, t.ID, sess.ExternalID, sess.URL); err != nil {
			return storeErr("top-up", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "wallet.top_up_started", "wallet", orgID.String(), map[string]string{
			"top_up_id": t.ID.String(), "provider": t.Provider, "amount": fmt.Sprint(t.Amount), "currency": t.Currency}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.CreateTopUpResponse{TopUp: topUpProto(t)}), nil
}

// ListTopUps lists the organization's latest top-ups, newest first.
func (s *BillingService) ListTopUps(ctx context.Context, req *connect.Request[billingv1.ListTopUpsRequest]) (*connect.Response[billingv1.ListTopUpsResponse], error) {
	list, err := s.opts.Store.TopUps(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), listTopUpsLimit)
	if err != nil {
		return nil, storeErr("top-ups", err)
	}
	out := &billingv1.ListTopUpsResponse{}
	for _, t := range list {
		out.TopUps = append(out.TopUps, topUpProto(t))
	}
	return connect.NewResponse(out), nil
}

// sameOrigin checks that a return URL is on the dashboard's own origin, so the payment
// pages cannot be used to send people elsewhere; empty means the dashboard's home.
func (s *BillingService) sameOrigin(raw string) (*url.URL, error) {
	home, err := url.Parse(s.opts.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("the platform's public URL is not valid")
	}
	if raw == "" {
		return home.JoinPath("/"), nil
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, home.Scheme) || !strings.EqualFold(u.Host, home.Host) || u.User != nil {
		return nil, fmt.Errorf("must be a page of %s://%s", home.Scheme, home.Host)
	}
	return u, nil
}

// withQuery returns u with the key/value pairs added to its query.
func withQuery(u *url.URL, kv ...string) string {
	c := *u
	q := c.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	c.RawQuery = q.Encode()
	return c.String()
}

func topUpProto(t store.TopUp) *billingv1.TopUp {
	out := &billingv1.TopUp{Id: t.ID.String(), Provider: t.Provider, Amount: t.Amount, Currency: t.Currency, Status: t.Status,
		CreatedAt: timestamppb.New(t.CreatedAt), CompletedAt: tsPtr(t.CompletedAt)}
	if t.Status == store.TopUpOpen {
		out.CheckoutUrl = t.CheckoutURL
	}
	return out
}
