package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

func TestBillingLedgersAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	org := uuid.New()
	require.NoError(t, st.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.LockWallet(ctx, org, "USD"); err != nil {
			return err
		}
		_, applied, err := q.AppendWalletTransaction(ctx, store.WalletTransaction{OrganizationID: org, Kind: "credit",
			Amount: 100, Currency: "USD", Actor: "test", Reference: "test:1"})
		require.True(t, applied)
		return err
	}))
	price := int64(5)
	_, err := st.InsertPriceOverride(ctx, store.PriceOverride{ResourceType: "app", ResourceID: uuid.New(), UnitPrice: &price,
		EffectiveFrom: time.Now(), SetBy: "user:admin", Reason: "test"})
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE wallet_transactions SET amount = 1000`,
		`DELETE FROM wallet_transactions`,
		`TRUNCATE wallet_transactions CASCADE`,
		`TRUNCATE usage_charges`,
		`DELETE FROM price_overrides`,
	} {
		_, err := st.Pool().Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
	w, err := st.Wallet(ctx, org)
	require.NoError(t, err)
	require.Equal(t, int64(100), w.Balance)
}

func TestCheckWalletsBalanceFindsATamperedWallet(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	orgs := []uuid.UUID{uuid.New(), uuid.New()}
	for _, org := range orgs {
		require.NoError(t, st.InTx(ctx, func(q *store.Queries) error {
			if _, err := q.LockWallet(ctx, org, "EUR"); err != nil {
				return err
			}
			for k := range 3 {
				if _, _, err := q.AppendWalletTransaction(ctx, store.WalletTransaction{OrganizationID: org, Kind: "credit",
					Amount: int64(10 * (k + 1)), Currency: "EUR", Actor: "test", Reference: uuid.NewString()}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	bad, err := st.CheckWalletsBalance(ctx)
	require.NoError(t, err)
	require.Empty(t, bad)

	_, err = st.Pool().Exec(ctx, `UPDATE wallets SET balance = balance + 1 WHERE organization_id = $1`, orgs[1])
	require.NoError(t, err)
	bad, err = st.CheckWalletsBalance(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.WalletMismatch{{OrganizationID: orgs[1], Balance: 61, LedgerSum: 60}}, bad)
}

func TestPlanPriceChangesAreRecorded(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	p, err := st.CreatePlan(ctx, store.Plan{Name: "starter", CPUMillis: 500, MemoryMiB: 512, PricePerHour: 15,
		Currency: "USD", MaxReplicas: 3, MaxApps: 3})
	require.NoError(t, err)
	before := time.Now().Add(-time.Second)
	p.PricePerHour = 20
	_, err = st.UpdatePlan(ctx, p)
	require.NoError(t, err)
	p.Description = "no price change"
	_, err = st.UpdatePlan(ctx, p)
	require.NoError(t, err)
	prices, err := st.PlanPrices(ctx, p.ID)
	require.NoError(t, err)
	require.Len(t, prices, 2)
	require.Equal(t, int64(20), prices[0].PricePerHour)
	require.True(t, prices[0].EffectiveFrom.After(before), "a change applies from when it is made")
	require.Equal(t, int64(15), prices[1].PricePerHour)
	require.True(t, prices[1].EffectiveFrom.IsZero(), "the first price has always applied (-infinity)")
}
