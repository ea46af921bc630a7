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

// GetWallet returns the organization's wallet (empty before its first use) and its state.
func (s *BillingService) GetWallet(ctx context.Context, req *connect.Request[billingv1.GetWalletRequest]) (*connect.Response[billingv1.GetWalletResponse], error) {
	w, err := s.wallet(ctx, s.opts.Store.Queries, uuid.MustParse(req.Msg.GetOrganizationId()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.GetWalletResponse{Wallet: w}), nil
}

// wallet reads an organization's wallet (empty before its first use) with its state.
func (s *BillingService) wallet(ctx context.Context, q *store.Queries, orgID uuid.UUID) (*billingv1.Wallet, error) {
	w, err := q.Wallet(ctx, orgID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		w = store.Wallet{OrganizationID: orgID}
	case err != nil:
		return nil, storeErr("wallet", err)
	}
	a, err := q.BillingAccount(ctx, orgID)
	if err != nil {
		return nil, storeErr("billing account", err)
	}
	return s.walletProto(w, a), nil
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

// ListUsage lists the organization's hourly charges in a range (default: the last 24 hours,
// at most 92 days).
func (s *BillingService) ListUsage(ctx context.Context, req *connect.Request[billingv1.ListUsageRequest]) (*connect.Response[billingv1.ListUsageResponse], error) {
	from, to, err := billing.ResolveRange(optionalTime(req.Msg.GetFrom()), optionalTime(req.Msg.GetTo()), time.Now(),
		24*time.Hour, billing.MaxReportRange)
	if err != nil {
		return nil, reportErr("usage", err)
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
	var w *billingv1.Wallet
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
		if w, err = s.wallet(ctx, q, orgID); err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, eventType, "wallet", orgID.String(), map[string]string{
			"amount": fmt.Sprint(t.Amount), "currency": t.Currency, "balance": fmt.Sprint(t.BalanceAfter), "reason": reason}))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return transactionProto(t), w, nil
}

func (s *BillingService) walletProto(w store.Wallet, a store.BillingAccount) *billingv1.Wallet {
	st := s.opts.Rules.Status(a)
	out := &billingv1.Wallet{OrganizationId: w.OrganizationID.String(), Currency: w.Currency, Balance: w.Balance,
		State: st.State, LowBalanceThreshold: st.Threshold, SuspendedBy: a.SuspendedBy, SuspendReason: a.SuspendReason}
	if !w.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(w.UpdatedAt)
	}
	if st.GraceEndsAt != nil {
		out.GraceEndsAt = timestamppb.New(*st.GraceEndsAt)
	}
	if a.SuspendedAt != nil {
		out.SuspendedAt = timestamppb.New(*a.SuspendedAt)
	}
	return out
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

// SetLowBalanceThreshold sets the organization's own warning threshold, or goes back to the
// platform's; the state follows at once.
func (s *BillingService) SetLowBalanceThreshold(ctx context.Context, req *connect.Request[billingv1.SetLowBalanceThresholdRequest]) (*connect.Response[billingv1.SetLowBalanceThresholdResponse], error) {
	orgID := uuid.MustParse(req.Msg.GetOrganizationId())
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		a, err := q.LockBillingAccount(ctx, orgID)
		if err != nil {
			return storeErr("billing account", err)
		}
		a.LowBalanceThreshold = req.Msg.Amount
		if err := q.UpdateBillingAccount(ctx, a); err != nil {
			return storeErr("billing account", err)
		}
		threshold := "platform"
		if a.LowBalanceThreshold != nil {
			threshold = fmt.Sprint(*a.LowBalanceThreshold)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "wallet.threshold_set", "wallet", orgID.String(),
			map[string]string{"threshold": threshold}))
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.opts.Rules.Check(ctx, orgID); err != nil {
		return nil, storeErr("billing account", err)
	}
	w, err := s.wallet(ctx, s.opts.Store.Queries, orgID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.SetLowBalanceThresholdResponse{Wallet: w}), nil
}

// SuspendOrganization suspends every app of the organization until an admin resumes it.
func (s *BillingService) SuspendOrganization(ctx context.Context, req *connect.Request[billingv1.SuspendOrganizationRequest]) (*connect.Response[billingv1.SuspendOrganizationResponse], error) {
	w, err := s.suspension(ctx, req.Msg.GetOrganizationId(), req.Msg.GetReason(), s.opts.Rules.Suspend,
		"the organization is already suspended by an admin")
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.SuspendOrganizationResponse{Wallet: w}), nil
}

// ResumeOrganization ends a suspension, by billing or by an admin.
func (s *BillingService) ResumeOrganization(ctx context.Context, req *connect.Request[billingv1.ResumeOrganizationRequest]) (*connect.Response[billingv1.ResumeOrganizationResponse], error) {
	w, err := s.suspension(ctx, req.Msg.GetOrganizationId(), req.Msg.GetReason(), s.opts.Rules.Resume,
		"the organization is not suspended")
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.ResumeOrganizationResponse{Wallet: w}), nil
}

type suspendFunc func(context.Context, *store.Queries, uuid.UUID, string, store.ActivityEvent) (store.BillingAccount, error)

// suspension runs an admin's suspend or resume with its reason; conflict says why it cannot.
func (s *BillingService) suspension(ctx context.Context, org, reason string, fn suspendFunc, conflict string) (*billingv1.Wallet, error) {
	orgID := uuid.MustParse(org)
	reason = strings.TrimSpace(reason)
	if len(reason) < 3 {
		return nil, invalid(workload.FieldErrors{{Field: "reason", Reason: "say why, in at least 3 characters"}})
	}
	var w *billingv1.Wallet
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.LockOrganization(ctx, orgID); err != nil {
			return storeErr("organization", err)
		}
		_, err := fn(ctx, q, orgID, reason, event(ctx, orgID, "", "", "", nil))
		if errors.Is(err, store.ErrConflict) {
			return failedPrecondition("%s", conflict)
		}
		if err != nil {
			return storeErr("organization", err)
		}
		w, err = s.wallet(ctx, q, orgID)
		return err
	})
	return w, err
}

// ListWallets lists organizations with their wallets and states, for platform admins.
func (s *BillingService) ListWallets(ctx context.Context, req *connect.Request[billingv1.ListWalletsRequest]) (*connect.Response[billingv1.ListWalletsResponse], error) {
	list, err := s.opts.Store.OrganizationWallets(ctx, strings.TrimSpace(req.Msg.GetQuery()), 500)
	if err != nil {
		return nil, storeErr("wallets", err)
	}
	out := &billingv1.ListWalletsResponse{}
	for _, w := range list {
		pw := s.walletProto(w.Wallet, w.Account)
		if st := req.Msg.GetState(); st != "" && pw.GetState() != st {
			continue
		}
		out.Wallets = append(out.Wallets, &billingv1.OrganizationWallet{Wallet: pw, OrganizationName: w.OrganizationName})
	}
	return connect.NewResponse(out), nil
}

// RunMetering meters every complete hour that is due now, and waits for it.
func (s *BillingService) RunMetering(ctx context.Context, _ *connect.Request[billingv1.RunMeteringRequest]) (*connect.Response[billingv1.RunMeteringResponse], error) {
	if _, err := s.opts.Meter.Run(ctx); err != nil {
		return nil, storeErr("metering", err)
	}
	_, err := s.opts.Store.InsertActivity(ctx, event(ctx, uuid.Nil, "billing.metered", "platform", "", nil))
	if err != nil {
		return nil, storeErr("activity", err)
	}
	return connect.NewResponse(&billingv1.RunMeteringResponse{}), nil
}
