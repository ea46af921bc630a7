package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
	"skypanel/shared/workload"
)

// BillingService implements billingv1connect.BillingServiceHandler.
type BillingService struct {
	billingv1connect.UnimplementedBillingServiceHandler
	opts Options
}

// GetWallet returns the organization's wallet (empty before its first use).
func (s *BillingService) GetWallet(ctx context.Context, req *connect.Request[billingv1.GetWalletRequest]) (*connect.Response[billingv1.GetWalletResponse], error) {
	orgID := uuid.MustParse(req.Msg.GetOrganizationId())
	w, err := s.opts.Store.Wallet(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return connect.NewResponse(&billingv1.GetWalletResponse{Wallet: &billingv1.Wallet{OrganizationId: orgID.String()}}), nil
	}
	if err != nil {
		return nil, storeErr("wallet", err)
	}
	return connect.NewResponse(&billingv1.GetWalletResponse{Wallet: walletProto(w)}), nil
}

// ListTransactions lists the wallet's ledger, newest first.
func (s *BillingService) ListTransactions(ctx context.Context, req *connect.Request[billingv1.ListTransactionsRequest]) (*connect.Response[billingv1.ListTransactionsResponse], error) {
	size := int(req.Msg.GetPageSize())
	if size == 0 {
		size = 50
	}
	var before int64
	if t := req.Msg.GetPageToken(); t != "" {
		var err error
		if before, err = strconv.ParseInt(t, 10, 64); err != nil || before <= 0 {
			return nil, invalid(workload.FieldErrors{{Field: "page_token", Reason: "not a token from a previous page"}})
		}
	}
	ts, err := s.opts.Store.WalletTransactions(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), before, size+1)
	if err != nil {
		return nil, storeErr("transactions", err)
	}
	out := &billingv1.ListTransactionsResponse{}
	if len(ts) > size {
		ts = ts[:size]
		out.NextPageToken = strconv.FormatInt(ts[size-1].ID, 10)
	}
	for _, t := range ts {
		out.Transactions = append(out.Transactions, transactionProto(t))
	}
	return connect.NewResponse(out), nil
}

// maxUsageRange bounds one usage listing.
const maxUsageRange = 92 * 24 * time.Hour

// ListUsage lists the organization's hourly charges in a range (default: the last 24 hours).
func (s *BillingService) ListUsage(ctx context.Context, req *connect.Request[billingv1.ListUsageRequest]) (*connect.Response[billingv1.ListUsageResponse], error) {
	to := time.Now()
	if req.Msg.GetTo() != nil {
		to = req.Msg.GetTo().AsTime()
	}
	from := to.Add(-24 * time.Hour)
	if req.Msg.GetFrom() != nil {
		from = req.Msg.GetFrom().AsTime()
	}
	switch {
	case !from.Before(to):
		return nil, invalid(workload.FieldErrors{{Field: "from", Reason: "must be before to"}})
	case to.Sub(from) > maxUsageRange:
		return nil, invalid(workload.FieldErrors{{Field: "from", Reason: "the range may span at most 92 days"}})
	}
	cs, err := s.opts.Store.UsageCharges(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), from, to)
	if err != nil {
		return nil, storeErr("usage", err)
	}
	out := &billingv1.ListUsageResponse{}
	for _, c := range cs {
		out.Total += c.Amount
		out.Currency = c.Currency
		out.Charges = append(out.Charges, &billingv1.UsageCharge{ResourceType: c.ResourceType, ResourceId: c.ResourceID.String(),
			PeriodStart: timestamppb.New(c.PeriodStart), UnitSeconds: c.UnitSeconds, UnitPrice: c.UnitPrice,
			Amount: c.Amount, Currency: c.Currency})
	}
	return connect.NewResponse(out), nil
}

// CreditWallet adds money to a wallet by hand.
func (s *BillingService) CreditWallet(ctx context.Context, req *connect.Request[billingv1.CreditWalletRequest]) (*connect.Response[billingv1.CreditWalletResponse], error) {
	t, w, err := s.post(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), "wallet.credited", req.Msg.GetReason(),
		func(q *store.Queries, e billing.Entry) (store.WalletTransaction, error) {
			e.Amount, e.Currency = req.Msg.GetAmount(), req.Msg.GetCurrency()
			t, _, err := billing.Credit(ctx, q, e)
			return t, err
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.CreditWalletResponse{Transaction: t, Wallet: w}), nil
}

// AdjustWallet corrects a wallet by a signed amount.
func (s *BillingService) AdjustWallet(ctx context.Context, req *connect.Request[billingv1.AdjustWalletRequest]) (*connect.Response[billingv1.AdjustWalletResponse], error) {
	if req.Msg.GetAmount() == 0 {
		return nil, invalid(workload.FieldErrors{{Field: "amount", Reason: "must not be zero"}})
	}
	orgID := uuid.MustParse(req.Msg.GetOrganizationId())
	t, w, err := s.post(ctx, orgID, "wallet.adjusted", req.Msg.GetReason(),
		func(q *store.Queries, e billing.Entry) (store.WalletTransaction, error) {
			cur, err := q.Wallet(ctx, orgID)
			if errors.Is(err, store.ErrNotFound) {
				return store.WalletTransaction{}, failedPrecondition("the organization has no wallet yet: credit it first")
			}
			if err != nil {
				return store.WalletTransaction{}, err
			}
			e.Amount, e.Currency = req.Msg.GetAmount(), cur.Currency
			t, _, err := billing.Adjust(ctx, q, e)
			return t, err
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.AdjustWalletResponse{Transaction: t, Wallet: w}), nil
}

// post moves money by an admin's hand: the ledger row and an activity row in one transaction.
func (s *BillingService) post(ctx context.Context, orgID uuid.UUID, eventType, reason string,
	fn func(*store.Queries, billing.Entry) (store.WalletTransaction, error)) (*billingv1.Transaction, *billingv1.Wallet, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) < 3 {
		return nil, nil, invalid(workload.FieldErrors{{Field: "reason", Reason: "say why, in at least 3 characters"}})
	}
	p := mustPrincipal(ctx)
	var t store.WalletTransaction
	var w store.Wallet
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.OrganizationByID(ctx, orgID); err != nil {
			return storeErr("organization", err)
		}
		var err error
		t, err = fn(q, billing.Entry{OrganizationID: orgID, Reason: reason, Actor: "user:" + p.UserID.String(),
			Reference: "admin:" + uuid.NewString()})
		switch {
		case errors.Is(err, billing.ErrCurrencyMismatch):
			return invalid(workload.FieldErrors{{Field: "currency", Reason: "the organization's wallet is in another currency"}})
		case errors.Is(err, billing.ErrInvalid):
			return invalid(workload.FieldErrors{{Field: "amount", Reason: err.Error()}})
		case err != nil:
			return storeErr("wallet", err)
		}
		if w, err = q.Wallet(ctx, orgID); err != nil {
			return storeErr("wallet", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, eventType, "wallet", orgID.String(), map[string]string{
			"amount": fmt.Sprint(t.Amount), "currency": t.Currency, "balance": fmt.Sprint(t.BalanceAfter), "reason": reason}))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return transactionProto(t), walletProto(w), nil
}

func walletProto(w store.Wallet) *billingv1.Wallet {
	return &billingv1.Wallet{OrganizationId: w.OrganizationID.String(), Currency: w.Currency, Balance: w.Balance,
		UpdatedAt: timestamppb.New(w.UpdatedAt)}
}

func transactionProto(t store.WalletTransaction) *billingv1.Transaction {
	return &billingv1.Transaction{Id: t.ID, Kind: t.Kind, Amount: t.Amount, Currency: t.Currency, BalanceAfter: t.BalanceAfter,
		Reason: t.Reason, Reference: t.Reference, CreatedAt: timestamppb.New(t.CreatedAt)}
}

// SetAppPrice overrides an app's price from the next hour on, or ends the override.
func (s *BillingService) SetAppPrice(ctx context.Context, req *connect.Request[billingv1.SetAppPriceRequest]) (*connect.Response[billingv1.SetAppPriceResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	reason := strings.TrimSpace(req.Msg.GetReason())
	if len(reason) < 3 {
		return nil, invalid(workload.FieldErrors{{Field: "reason", Reason: "say why, in at least 3 characters"}})
	}
	p := mustPrincipal(ctx)
	var o store.PriceOverride
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		app, err := q.LockApp(ctx, orgID, appID)
		if err != nil {
			return storeErr("app", err)
		}
		o, err = billing.SetPriceOverride(ctx, q, billing.Override{Type: billing.ResourceApp, ID: app.ID,
			UnitPrice: req.Msg.UnitPrice, SetBy: "user:" + p.UserID.String(), Reason: reason})
		if errors.Is(err, billing.ErrInvalid) {
			return invalid(workload.FieldErrors{{Field: "unit_price", Reason: err.Error()}})
		}
		if err != nil {
			return storeErr("price", err)
		}
		price := "plan"
		if o.UnitPrice != nil {
			price = fmt.Sprint(*o.UnitPrice)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.price_set", "app", app.ID.String(),
			map[string]string{"name": app.Name, "unit_price": price, "reason": reason}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.SetAppPriceResponse{Override: overrideProto(o)}), nil
}

// ListAppPrices lists an app's price overrides, newest first.
func (s *BillingService) ListAppPrices(ctx context.Context, req *connect.Request[billingv1.ListAppPricesRequest]) (*connect.Response[billingv1.ListAppPricesResponse], error) {
	app, err := s.opts.Store.App(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId()))
	if err != nil {
		return nil, storeErr("app", err)
	}
	list, err := s.opts.Store.PriceOverrides(ctx, string(billing.ResourceApp), app.ID)
	if err != nil {
		return nil, storeErr("prices", err)
	}
	out := &billingv1.ListAppPricesResponse{}
	for _, o := range list {
		out.Overrides = append(out.Overrides, overrideProto(o))
	}
	return connect.NewResponse(out), nil
}

func overrideProto(o store.PriceOverride) *billingv1.PriceOverride {
	return &billingv1.PriceOverride{UnitPrice: o.UnitPrice, EffectiveFrom: timestamppb.New(o.EffectiveFrom), SetBy: o.SetBy,
		Reason: o.Reason, CreatedAt: timestamppb.New(o.CreatedAt)}
}
