package api_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
)

func TestAdminsCreditAndAdjustWalletsWithAReason(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	owner := env.NewUser(t, "owner@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	asAdmin := testenv.Client(env, billingv1connect.NewBillingServiceClient, admin.Token)
	asOwner := testenv.Client(env, billingv1connect.NewBillingServiceClient, owner.Token)

	w, err := asOwner.GetWallet(ctx, connect.NewRequest(&billingv1.GetWalletRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Empty(t, w.Msg.GetWallet().GetCurrency(), "no wallet before its first use")

	// Bad input is refused before anything changes, naming the field.
	_, err = asAdmin.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: orgID.String(),
		Amount: 500, Currency: "USD", Reason: "  "}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "reason")
	_, err = asAdmin.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: orgID.String(),
		Amount: -5, Currency: "USD", Reason: "goodwill"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = asAdmin.AdjustWallet(ctx, connect.NewRequest(&billingv1.AdjustWalletRequest{OrganizationId: orgID.String(),
		Amount: -100, Reason: "correction"}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "no wallet to adjust yet")
	_, err = asAdmin.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: uuid.NewString(),
		Amount: 500, Currency: "USD", Reason: "goodwill"}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	// A credit, then an adjustment; the owner sees them, and so does the activity log.
	c, err := asAdmin.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: orgID.String(),
		Amount: 5000, Currency: "USD", Reason: "welcome credit"}))
	require.NoError(t, err)
	require.EqualValues(t, 5000, c.Msg.GetWallet().GetBalance())
	_, err = asAdmin.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: orgID.String(),
		Amount: 5000, Currency: "EUR", Reason: "wrong currency"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "currency")
	a, err := asAdmin.AdjustWallet(ctx, connect.NewRequest(&billingv1.AdjustWalletRequest{OrganizationId: orgID.String(),
		Amount: -1200, Reason: "refund of a duplicate top-up"}))
	require.NoError(t, err)
	require.EqualValues(t, 3800, a.Msg.GetWallet().GetBalance())
	require.Equal(t, "adjustment", a.Msg.GetTransaction().GetKind())

	txs, err := asOwner.ListTransactions(ctx, connect.NewRequest(&billingv1.ListTransactionsRequest{OrganizationId: orgID.String(), PageSize: 1}))
	require.NoError(t, err)
	require.Len(t, txs.Msg.GetTransactions(), 1)
	require.EqualValues(t, -1200, txs.Msg.GetTransactions()[0].GetAmount(), "newest first")
	more, err := asOwner.ListTransactions(ctx, connect.NewRequest(&billingv1.ListTransactionsRequest{OrganizationId: orgID.String(),
		PageSize: 1, PageToken: txs.Msg.GetNextPageToken()}))
	require.NoError(t, err)
	require.EqualValues(t, 5000, more.Msg.GetTransactions()[0].GetAmount())
	require.Equal(t, "welcome credit", more.Msg.GetTransactions()[0].GetReason())

	acts := testenv.Client(env, activityv1connect.NewActivityServiceClient, owner.Token)
	list, err := acts.ListActivity(ctx, connect.NewRequest(&activityv1.ListActivityRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	var kinds []string
	for _, e := range list.Msg.GetEvents() {
		if e.GetEntityType() == "wallet" {
			kinds = append(kinds, e.GetEventType()+":"+e.GetMetadata()["reason"])
		}
	}
	require.ElementsMatch(t, []string{"wallet.credited:welcome credit", "wallet.adjusted:refund of a duplicate top-up"}, kinds)

	// Usage: what metering charged, with its total.
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	app := uuid.New()
	require.NoError(t, env.Store.InTx(ctx, func(q *store.Queries) error {
		return billing.SetRunning(ctx, q, billing.Resource{Type: billing.ResourceApp, ID: app, OrganizationID: orgID}, 2, 30, "USD", start)
	}))
	meter, err := billing.New(billing.Options{Store: env.Store})
	require.NoError(t, err)
	_, err = meter.Run(ctx)
	require.NoError(t, err)
	u, err := asOwner.ListUsage(ctx, connect.NewRequest(&billingv1.ListUsageRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.NotEmpty(t, u.Msg.GetCharges())
	require.EqualValues(t, 60*int64(len(u.Msg.GetCharges())), u.Msg.GetTotal(), "2 replicas × 30 per full hour")
	require.Equal(t, "USD", u.Msg.GetCurrency())

	// A range backwards or over 92 days is refused, naming the field.
	now := time.Now()
	for _, r := range []*billingv1.ListUsageRequest{
		{OrganizationId: orgID.String(), From: timestamppb.New(now), To: timestamppb.New(now.Add(-time.Hour))},
		{OrganizationId: orgID.String(), From: timestamppb.New(now.Add(-93 * 24 * time.Hour)), To: timestamppb.New(now)},
	} {
		_, err := asOwner.ListUsage(ctx, connect.NewRequest(r))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		require.Contains(t, err.Error(), "from:")
	}
}
