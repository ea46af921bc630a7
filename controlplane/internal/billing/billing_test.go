package billing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

// t0 is a Monday midnight UTC; the tests' clocks start there.
var t0 = time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)

type bundle struct {
	ctx   context.Context
	st    *store.Store
	now   time.Time
	meter *billing.Meter
}

// setup returns a fresh database and a Meter whose clock is b.now.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{ctx: context.Background(), st: testenv.Store(t), now: t0}
	var err error
	b.meter, err = billing.New(billing.Options{Store: b.st, Now: func() time.Time { return b.now }})
	require.NoError(t, err)
	return b
}

func (b *bundle) plan(t *testing.T, name string, price int64) store.Plan {
	t.Helper()
	p, err := b.st.CreatePlan(b.ctx, store.Plan{Name: name, CPUMillis: 500, MemoryMiB: 512, PricePerHour: price,
		Currency: "USD", MaxReplicas: 10, MaxApps: 10})
	require.NoError(t, err)
	return p
}

func (b *bundle) tx(t *testing.T, fn func(q *store.Queries) error) {
	t.Helper()
	require.NoError(t, b.st.InTx(b.ctx, fn))
}

func (b *bundle) setRunning(t *testing.T, r billing.Resource, quantity int, price int64, at time.Time) {
	t.Helper()
	b.tx(t, func(q *store.Queries) error { return billing.SetRunning(b.ctx, q, r, quantity, price, "USD", at) })
}

func (b *bundle) balance(t *testing.T, org uuid.UUID) int64 {
	t.Helper()
	w, err := b.st.Wallet(b.ctx, org)
	require.NoError(t, err)
	return w.Balance
}

func (b *bundle) charges(t *testing.T, org uuid.UUID) []store.UsageCharge {
	t.Helper()
	c, err := b.st.UsageCharges(b.ctx, org, t0.Add(-24*time.Hour), t0.Add(30*24*time.Hour))
	require.NoError(t, err)
	return c
}

func (b *bundle) requireBooksBalance(t *testing.T) {
	t.Helper()
	bad, err := b.st.CheckWalletsBalance(b.ctx)
	require.NoError(t, err)
	require.Empty(t, bad, "every wallet's balance equals the sum of its ledger")
}

func app(org uuid.UUID, plan *store.Plan) billing.Resource {
	r := billing.Resource{Type: billing.ResourceApp, ID: uuid.New(), OrganizationID: org}
	if plan != nil {
		r.PlanID = &plan.ID
	}
	return r
}

func TestCreditAppliesEachReferenceOnce(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	top := billing.Entry{OrganizationID: org, Amount: 5000, Currency: "EUR", Reference: "stripe:evt_1", Actor: "stripe"}
	var first store.WalletTransaction
	b.tx(t, func(q *store.Queries) error {
		tx, applied, err := billing.Credit(b.ctx, q, top)
		require.True(t, applied)
		first = tx
		return err
	})
	b.tx(t, func(q *store.Queries) error {
		tx, applied, err := billing.Credit(b.ctx, q, top)
		require.False(t, applied, "the same webhook delivered again changes nothing")
		require.Equal(t, first.ID, tx.ID)
		return err
	})
	require.Equal(t, int64(5000), b.balance(t, org))
	require.Equal(t, int64(5000), first.BalanceAfter)

	err := b.st.InTx(b.ctx, func(q *store.Queries) error {
		other := top
		other.Amount = 1
		_, _, err := billing.Credit(b.ctx, q, other)
		return err
	})
	require.ErrorIs(t, err, store.ErrConflict, "a reference reused for another amount is refused")

	err = b.st.InTx(b.ctx, func(q *store.Queries) error {
		_, _, err := billing.Credit(b.ctx, q, billing.Entry{OrganizationID: org, Amount: 1, Currency: "USD",
			Reference: "stripe:evt_2", Actor: "stripe"})
		return err
	})
	require.ErrorIs(t, err, billing.ErrCurrencyMismatch, "the wallet keeps the currency it was created in")
	b.requireBooksBalance(t)
}

func TestPostingRefusesBadInputBeforeAnythingChanges(t *testing.T) {
	b := setup(t)
	org := uuid.New()
	cases := []struct {
		name string
		post func(context.Context, *store.Queries, billing.Entry) (store.WalletTransaction, bool, error)
		e    billing.Entry
		want string
	}{
		{"an adjustment needs a reason", billing.Adjust,
			billing.Entry{OrganizationID: org, Amount: -5, Currency: "USD", Reference: "admin:1", Actor: "user:x"}, "reason"},
		{"a refund needs a reason", billing.Refund,
			billing.Entry{OrganizationID: org, Amount: 5, Currency: "USD", Reference: "admin:2", Actor: "user:x"}, "reason"},
		{"a credit is positive", billing.Credit,
			billing.Entry{OrganizationID: org, Amount: -5, Currency: "USD", Reference: "admin:3", Actor: "user:x"}, "amount"},
		{"a debit is positive", billing.Debit,
			billing.Entry{OrganizationID: org, Amount: 0, Currency: "USD", Reference: "admin:4", Actor: "user:x"}, "amount"},
		{"the currency is an ISO code", billing.Credit,
			billing.Entry{OrganizationID: org, Amount: 5, Currency: "usd", Reference: "admin:5", Actor: "user:x"}, "currency"},
		{"a reference is required", billing.Credit,
			billing.Entry{OrganizationID: org, Amount: 5, Currency: "USD", Actor: "user:x"}, "reference"},
		{"an actor is required", billing.Credit,
			billing.Entry{OrganizationID: org, Amount: 5, Currency: "USD", Reference: "admin:6"}, "actor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := b.st.InTx(b.ctx, func(q *store.Queries) error {
				_, _, err := c.post(b.ctx, q, c.e)
				return err
			})
			require.ErrorIs(t, err, billing.ErrInvalid)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := b.st.Wallet(b.ctx, org)
	require.ErrorIs(t, err, store.ErrNotFound, "no wallet was created")

	b.tx(t, func(q *store.Queries) error {
		tx, applied, err := billing.Adjust(b.ctx, q, billing.Entry{OrganizationID: org, Amount: -250, Currency: "USD",
			Reference: "admin:7", Actor: "user:x", Reason: "goodwill reversal"})
		require.True(t, applied)
		require.Equal(t, int64(-250), tx.BalanceAfter)
		return err
	})
}

func TestMeterProratesPerSecondAndRoundsOncePerHour(t *testing.T) {
	b := setup(t)
	plan := b.plan(t, "p7", 7)
	org := uuid.New()
	a := app(org, &plan)
	// 2 replicas 00:20:00–00:35:00.4 (fraction dropped), then 3 until 00:50:30: 2×900 + 3×930
	// replica-seconds at 7 = 32130/3600 ≈ 8.925 → 9.
	b.setRunning(t, a, 2, 7, t0.Add(20*time.Minute))
	b.setRunning(t, a, 3, 7, t0.Add(35*time.Minute+400*time.Millisecond))
	b.setRunning(t, a, 0, 7, t0.Add(50*time.Minute+30*time.Second))
	// Half a minor unit rounds up: 1 replica for 30 min at 1.
	one := b.plan(t, "p1", 1)
	half := app(org, &one)
	b.setRunning(t, half, 1, 1, t0.Add(30*time.Minute))
	b.setRunning(t, half, 0, 1, t0.Add(60*time.Minute))
	// A whole hour at quantity q costs exactly q × price.
	whole := app(org, &plan)
	b.setRunning(t, whole, 4, 7, t0)

	b.now = t0.Add(time.Hour + time.Minute)
	reps, err := b.meter.Run(b.ctx)
	require.NoError(t, err)
	require.Len(t, reps, 72, "the first run looks 72 h back")
	got := map[uuid.UUID]store.UsageCharge{}
	for _, c := range b.charges(t, org) {
		got[c.ResourceID] = c
	}
	require.Len(t, got, 3)
	require.Equal(t, int64(9), got[a.ID].Amount)
	require.Equal(t, int64(2*900+3*930), got[a.ID].UnitSeconds)
	require.Equal(t, int64(1), got[half.ID].Amount)
	require.Equal(t, int64(28), got[whole.ID].Amount)
	require.Equal(t, int64(-38), b.balance(t, org), "usage is debited even below zero")
	b.requireBooksBalance(t)

	// Running again charges nothing twice.
	reps, err = b.meter.Run(b.ctx)
	require.NoError(t, err)
	require.Empty(t, reps)
	_, err = b.meter.MeterPeriod(b.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, int64(-38), b.balance(t, org))
}

func TestPriceChangesApplyFromTheNextPeriod(t *testing.T) {
	b := setup(t)
	plan := b.plan(t, "std", 100)
	org := uuid.New()
	a, c := app(org, &plan), app(org, &plan)
	cluster := billing.Resource{Type: billing.ResourceCluster, ID: uuid.New(), OrganizationID: org}
	b.setRunning(t, a, 1, 100, t0)
	b.setRunning(t, c, 1, 100, t0)
	b.setRunning(t, cluster, 1, 1000, t0)

	// During hour 0: the plan price goes to 200, a gets an override of 50 and the cluster one
	// of 700. All apply from hour 1.
	require.NoError(t, b.st.InsertPlanPrice(b.ctx, store.PlanPrice{PlanID: plan.ID, PricePerHour: 200, EffectiveFrom: t0.Add(10 * time.Minute)}))
	b.tx(t, func(q *store.Queries) error {
		fifty, sevenHundred := int64(50), int64(700)
		if _, err := billing.SetPriceOverride(b.ctx, q, billing.Override{Type: billing.ResourceApp, ID: a.ID, UnitPrice: &fifty,
			EffectiveFrom: t0.Add(20 * time.Minute), SetBy: "user:admin", Reason: "partner discount"}); err != nil {
			return err
		}
		_, err := billing.SetPriceOverride(b.ctx, q, billing.Override{Type: billing.ResourceCluster, ID: cluster.ID,
			UnitPrice: &sevenHundred, EffectiveFrom: t0.Add(30 * time.Minute), SetBy: "user:admin", Reason: "new contract"})
		return err
	})
	// In hour 2 a's override ends: the plan price applies again from hour 3.
	b.tx(t, func(q *store.Queries) error {
		_, err := billing.SetPriceOverride(b.ctx, q, billing.Override{Type: billing.ResourceApp, ID: a.ID,
			EffectiveFrom: t0.Add(2*time.Hour + 5*time.Minute), SetBy: "user:admin", Reason: "discount over"})
		return err
	})
	// Scheduling: an override effective exactly at a period start applies to that period.
	b.tx(t, func(q *store.Queries) error {
		one := int64(1)
		_, err := billing.SetPriceOverride(b.ctx, q, billing.Override{Type: billing.ResourceApp, ID: c.ID, UnitPrice: &one,
			EffectiveFrom: t0.Add(3 * time.Hour), SetBy: "user:admin", Reason: "scheduled"})
		return err
	})

	b.now = t0.Add(4*time.Hour + time.Minute)
	_, err := b.meter.Run(b.ctx)
	require.NoError(t, err)
	byHour := func(r billing.Resource) []int64 {
		var out []int64
		for _, ch := range b.charges(t, org) {
			if ch.ResourceID == r.ID {
				out = append(out, ch.Amount)
			}
		}
		return out
	}
	require.Equal(t, []int64{100, 50, 50, 200}, byHour(a))
	require.Equal(t, []int64{100, 200, 200, 1}, byHour(c))
	require.Equal(t, []int64{1000, 700, 700, 700}, byHour(cluster))
	b.requireBooksBalance(t)
}

func TestChangesNeverReachIntoAMeteredPeriod(t *testing.T) {
	b := setup(t)
	plan := b.plan(t, "std", 3600)
	org := uuid.New()
	a := app(org, &plan)
	b.setRunning(t, a, 1, 3600, t0)
	b.now = t0.Add(2*time.Hour + time.Minute)
	_, err := b.meter.Run(b.ctx)
	require.NoError(t, err)
	// A stop reported late, inside hour 1 (already charged), counts from the end of hour 1.
	b.setRunning(t, a, 0, 3600, t0.Add(90*time.Minute))
	// A start reported late for another app counts from the end of the last metered period.
	late := app(org, &plan)
	b.setRunning(t, late, 1, 3600, t0.Add(30*time.Minute))
	runs, err := b.st.BillableRuns(b.ctx, "app", a.ID)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, t0.Add(2*time.Hour), runs[0].EndedAt.UTC())
	runs, err = b.st.BillableRuns(b.ctx, "app", late.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Add(2*time.Hour), runs[0].StartedAt.UTC())

	// The same state again is a no-op; a change in the same second replaces the run.
	b.setRunning(t, late, 1, 3600, t0.Add(150*time.Minute))
	b.setRunning(t, late, 2, 3600, t0.Add(150*time.Minute))
	b.setRunning(t, late, 3, 3600, t0.Add(150*time.Minute+500*time.Millisecond))
	runs, err = b.st.BillableRuns(b.ctx, "app", late.ID)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, int32(3), runs[1].Quantity)
	require.Equal(t, t0.Add(150*time.Minute), runs[1].StartedAt.UTC())

	err = b.st.InTx(b.ctx, func(q *store.Queries) error {
		return billing.SetRunning(b.ctx, q, app(org, &plan), 1, 1, "EUR", b.now)
	})
	require.ErrorIs(t, err, billing.ErrCurrencyMismatch)
}

func TestMeterRefusesAPeriodThatHasNotEnded(t *testing.T) {
	b := setup(t)
	b.now = t0.Add(30 * time.Minute)
	_, err := b.meter.MeterPeriod(b.ctx, t0)
	require.ErrorIs(t, err, billing.ErrInvalid)
	b.now = t0.Add(time.Hour + 30*time.Second)
	_, err = b.meter.MeterPeriod(b.ctx, t0)
	require.ErrorIs(t, err, billing.ErrInvalid, "a period waits Delay after its end")
	_, err = b.meter.MeterPeriod(b.ctx, t0.Add(-time.Minute))
	require.ErrorIs(t, err, billing.ErrInvalid)
}

func TestACrashedBatchIsChargedByTheNextRun(t *testing.T) {
	b := setup(t)
	plan := b.plan(t, "std", 10)
	var orgs []uuid.UUID
	for range 25 {
		org := uuid.New()
		orgs = append(orgs, org)
		for range 4 {
			b.setRunning(t, app(org, &plan), 1, 10, t0)
		}
	}
	boom := errors.New("boom")
	b.now = t0.Add(time.Minute)
	for _, stage := range []billing.Stage{billing.StageLocked, billing.StageCharged, billing.StageCommitted} {
		t.Run(fmt.Sprintf("stage %d", stage), func(t *testing.T) {
			b.now = b.now.Add(time.Hour)
			crashing, err := billing.New(billing.Options{Store: b.st, Now: func() time.Time { return b.now }, BatchSize: 30,
				Hook: func(_ context.Context, s billing.Step) error {
					if s.Batch == 1 && s.Stage == stage {
						return boom
					}
					return nil
				}})
			require.NoError(t, err)
			_, err = crashing.Run(b.ctx)
			require.ErrorIs(t, err, boom)
			_, err = b.meter.Run(b.ctx)
			require.NoError(t, err)
		})
	}
	hours := int64(b.now.Sub(t0) / time.Hour)
	for _, org := range orgs {
		require.Equal(t, -4*10*hours, b.balance(t, org))
		require.Len(t, b.charges(t, org), 4*int(hours))
	}
	b.requireBooksBalance(t)
}
