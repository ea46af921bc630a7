package api_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
)

func withTestPayments() testenv.Option {
	return testenv.WithConfig(func(c *config.Config) { c.PaymentProvider = "test" })
}

func TestTopUpsAreRefusedWithoutAPaymentProvider(t *testing.T) {
	env := testenv.Start(t)
	owner := env.NewUser(t, "owner@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	c := testenv.Client(env, billingv1connect.NewBillingServiceClient, owner.Token)
	_, err := c.CreateTopUp(context.Background(), connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: orgID.String(),
		Amount: 2500, ReturnUrl: env.URL + "/"}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "top-ups are not enabled on this platform")
}

func TestCreateTopUpStartsACheckoutOnTheWalletsCurrency(t *testing.T) {
	env := testenv.Start(t, withTestPayments())
	ctx := context.Background()
	owner := env.NewUser(t, "owner@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	c := testenv.Client(env, billingv1connect.NewBillingServiceClient, owner.Token)
	req := func(amount int64, currency, returnURL string) *connect.Request[billingv1.CreateTopUpRequest] {
		return connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: orgID.String(), Amount: amount, Currency: currency,
			ReturnUrl: returnURL})
	}
	returnURL := env.URL + "/orgs/" + orgID.String() + "/billing"

	// Bad input is refused, naming the field, and starts nothing.
	for _, bad := range []struct {
		name, field string
		req         *connect.Request[billingv1.CreateTopUpRequest]
	}{
		{"an amount under 1.00", "amount", req(99, "", returnURL)},
		{"an amount over 100,000.00", "amount", req(10_000_001, "", returnURL)},
		{"a return URL on another site (an open redirect)", "return_url", req(2500, "", "https://evil.example/orgs")},
		{"a return URL on another scheme", "return_url", req(2500, "", strings.Replace(env.URL, "http:", "https:", 1)+"/")},
		{"a currency the platform does not bill in", "currency", req(2500, "EUR", returnURL)},
	} {
		t.Run(bad.name+" is refused", func(t *testing.T) {
			_, err := c.CreateTopUp(ctx, bad.req)
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%v", err)
			require.Contains(t, err.Error(), bad.field)
		})
	}
	list, err := c.ListTopUps(ctx, connect.NewRequest(&billingv1.ListTopUpsRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Empty(t, list.Msg.GetTopUps())

	resp, err := c.CreateTopUp(ctx, req(2500, "", returnURL))
	require.NoError(t, err)
	tu := resp.Msg.GetTopUp()
	require.Equal(t, "test", tu.GetProvider())
	require.Equal(t, "USD", tu.GetCurrency(), "a new wallet's currency is the platform's")
	require.Equal(t, "open", tu.GetStatus())
	require.True(t, strings.HasPrefix(tu.GetCheckoutUrl(), env.URL+"/billing/test-checkout/"+tu.GetId()+"?"), tu.GetCheckoutUrl())
	_, err = c.CreateTopUp(ctx, req(2500, "USD", returnURL))
	require.NoError(t, err, "the wallet's own currency may be named")

	list, err = c.ListTopUps(ctx, connect.NewRequest(&billingv1.ListTopUpsRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetTopUps(), 2)
	w, err := c.GetWallet(ctx, connect.NewRequest(&billingv1.GetWalletRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.EqualValues(t, 0, w.Msg.GetWallet().GetBalance(), "nothing is credited before the payment")

	acts := testenv.Client(env, activityv1connect.NewActivityServiceClient, owner.Token)
	events, err := acts.ListActivity(ctx, connect.NewRequest(&activityv1.ListActivityRequest{OrganizationId: orgID.String(),
		Filter: &activityv1.Filter{EventTypes: []string{"wallet.top_up_started"}}}))
	require.NoError(t, err)
	require.Len(t, events.Msg.GetEvents(), 2)
	require.Equal(t, "2500", events.Msg.GetEvents()[0].GetMetadata()["amount"])

	// An organization whose wallet is in another currency tops up in that one.
	other := env.NewOrg(t, owner, "Euro Corp")
	require.NoError(t, env.Store.InTx(ctx, func(q *store.Queries) error {
		_, _, err := billing.Credit(ctx, q, billing.Entry{OrganizationID: other, Amount: 100, Currency: "EUR",
			Reference: "admin:euro", Actor: "test"})
		return err
	}))
	_, err = c.CreateTopUp(ctx, connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: other.String(), Amount: 2500,
		Currency: "USD", ReturnUrl: returnURL}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "currency")
	eur, err := c.CreateTopUp(ctx, connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: other.String(), Amount: 2500,
		ReturnUrl: returnURL}))
	require.NoError(t, err)
	require.Equal(t, "EUR", eur.Msg.GetTopUp().GetCurrency())
}

func TestOnlyTheOrganizationsAdminsSeeAndStartItsTopUps(t *testing.T) {
	env := testenv.Start(t, withTestPayments())
	ctx := context.Background()
	owner := env.NewUser(t, "owner@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	stranger := env.NewUser(t, "stranger@example.com")
	env.NewOrg(t, stranger, "Other")
	c := testenv.Client(env, billingv1connect.NewBillingServiceClient, stranger.Token)

	_, err := c.CreateTopUp(ctx, connect.NewRequest(&billingv1.CreateTopUpRequest{OrganizationId: orgID.String(), Amount: 2500,
		ReturnUrl: env.URL + "/"}))
	require.Contains(t, []connect.Code{connect.CodePermissionDenied, connect.CodeNotFound}, connect.CodeOf(err), "%v", err)
	_, err = c.ListTopUps(ctx, connect.NewRequest(&billingv1.ListTopUpsRequest{OrganizationId: orgID.String()}))
	require.Contains(t, []connect.Code{connect.CodePermissionDenied, connect.CodeNotFound}, connect.CodeOf(err), "%v", err)
}
