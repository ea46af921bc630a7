package billing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/billing/payment"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

type topUpBundle struct {
	ctx context.Context
	st  *store.Store
	org uuid.UUID
}

func setupTopUps(t *testing.T) *topUpBundle {
	t.Helper()
	return &topUpBundle{ctx: context.Background(), st: testenv.Store(t), org: uuid.New()}
}

// open starts a stripe top-up of amount USD whose checkout is externalID.
func (b *topUpBundle) open(t *testing.T, amount int64, externalID string) store.TopUp {
	t.Helper()
	var tu store.TopUp
	require.NoError(t, b.st.InTx(b.ctx, func(q *store.Queries) error {
		var err error
		if tu, err = q.InsertTopUp(b.ctx, store.TopUp{OrganizationID: b.org, Provider: "stripe", Amount: amount, Currency: "USD"}); err != nil {
			return err
		}
		tu, err = q.SetTopUpCheckout(b.ctx, tu.ID, externalID, "https://checkout.example/"+externalID)
		return err
	}))
	return tu
}

func (b *topUpBundle) deliver(t *testing.T, e payment.Event) billing.PaymentResult {
	t.Helper()
	var res billing.PaymentResult
	require.NoError(t, b.st.InTx(b.ctx, func(q *store.Queries) error {
		var err error
		res, err = billing.HandlePaymentEvent(b.ctx, q, "stripe", e)
		return err
	}))
	return res
}

func (b *topUpBundle) balance(t *testing.T) int64 {
	t.Helper()
	w, err := b.st.Wallet(b.ctx, b.org)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	require.NoError(t, err)
	return w.Balance
}

func (b *topUpBundle) topUp(t *testing.T, id uuid.UUID) store.TopUp {
	t.Helper()
	tu, err := b.st.TopUp(b.ctx, id)
	require.NoError(t, err)
	return tu
}

func (b *topUpBundle) toppedUpEvents(t *testing.T) int {
	t.Helper()
	list, _, err := b.st.ListActivity(b.ctx, &b.org, store.ActivityFilter{EventTypes: []string{"wallet.topped_up"}}, 100, "")
	require.NoError(t, err)
	return len(list)
}

func paidEvent(id string, tu store.TopUp) payment.Event {
	return payment.Event{ID: id, Type: "checkout.session.completed", Outcome: payment.Paid, ExternalID: tu.ExternalID,
		TopUpID: tu.ID, Amount: tu.Amount, Currency: tu.Currency}
}

func TestAPaidTopUpIsCreditedOnceHoweverOftenItIsReported(t *testing.T) {
	b := setupTopUps(t)
	tu := b.open(t, 2500, "cs_1")

	first := b.deliver(t, paidEvent("evt_1", tu))
	require.True(t, first.Credited)
	require.Empty(t, first.Refused)
	require.EqualValues(t, 2500, b.balance(t))

	again := b.deliver(t, paidEvent("evt_1", tu))
	require.True(t, again.Duplicate, "the same event delivered twice acts once")
	require.False(t, again.Credited)

	other := paidEvent("evt_2", tu)
	other.Type = "checkout.session.async_payment_succeeded"
	second := b.deliver(t, other)
	require.False(t, second.Duplicate)
	require.False(t, second.Credited, "another event about the same checkout credits nothing more")
	require.Empty(t, second.Refused)
	require.EqualValues(t, 2500, b.balance(t))

	got := b.topUp(t, tu.ID)
	require.Equal(t, store.TopUpPaid, got.Status)
	require.NotNil(t, got.CompletedAt)
	require.NotNil(t, got.TransactionID)
	txs, err := b.st.WalletTransactions(b.ctx, b.org, 0, 10)
	require.NoError(t, err)
	require.Len(t, txs, 1)
	require.Equal(t, *got.TransactionID, txs[0].ID)
	require.Equal(t, "stripe:cs_1", txs[0].Reference)
	require.Equal(t, "payment:stripe", txs[0].Actor)
	require.Equal(t, 1, b.toppedUpEvents(t))

	// An event found by its checkout id alone (no top-up id echoed back) is handled too.
	tu2 := b.open(t, 700, "cs_2")
	e := paidEvent("evt_3", tu2)
	e.TopUpID = uuid.Nil
	require.True(t, b.deliver(t, e).Credited)
	require.EqualValues(t, 3200, b.balance(t))
}

func TestConcurrentDeliveriesCreditOnce(t *testing.T) {
	b := setupTopUps(t)
	tu := b.open(t, 1000, "cs_race")
	var wg sync.WaitGroup
	var mu sync.Mutex
	credited := 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half deliver the same event, half other events about the same checkout.
			id := "evt_same"
			if i%2 == 1 {
				id = fmt.Sprintf("evt_%d", i)
			}
			var res billing.PaymentResult
			err := b.st.InTx(b.ctx, func(q *store.Queries) error {
				var err error
				res, err = billing.HandlePaymentEvent(b.ctx, q, "stripe", paidEvent(id, tu))
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if res.Credited {
				credited++
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, credited)
	require.EqualValues(t, 1000, b.balance(t))
	require.Equal(t, 1, b.toppedUpEvents(t))
	bad, err := b.st.CheckWalletsBalance(b.ctx)
	require.NoError(t, err)
	require.Empty(t, bad)
}

func TestAPaymentThatDoesNotMatchItsTopUpIsNotCredited(t *testing.T) {
	for _, c := range []struct {
		name             string
		amount           int64
		currency, reason string
	}{
		{"another amount", 100, "USD", "paid 100 USD for a top-up of 2500 USD"},
		{"another currency", 2500, "EUR", "paid 2500 EUR for a top-up of 2500 USD"},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			b := setupTopUps(t)
			tu := b.open(t, 2500, "cs_1")
			e := paidEvent("evt_1", tu)
			e.Amount, e.Currency = c.amount, c.currency
			res := b.deliver(t, e)
			require.False(t, res.Credited)
			require.Equal(t, c.reason, res.Refused)
			require.EqualValues(t, 0, b.balance(t))
			require.Equal(t, store.TopUpFailed, b.topUp(t, tu.ID).Status)

			// The right amount reported later does not credit a failed top-up either.
			res = b.deliver(t, paidEvent("evt_2", tu))
			require.False(t, res.Credited)
			require.NotEmpty(t, res.Refused)
			require.EqualValues(t, 0, b.balance(t))
		})
	}
}

func TestExpiredAndFailedCheckoutsEndTheirTopUps(t *testing.T) {
	b := setupTopUps(t)
	expired, failed := b.open(t, 500, "cs_exp"), b.open(t, 500, "cs_fail")

	res := b.deliver(t, payment.Event{ID: "evt_1", Type: "checkout.session.expired", Outcome: payment.Expired,
		ExternalID: "cs_exp", TopUpID: expired.ID})
	require.False(t, res.Credited)
	require.Equal(t, store.TopUpExpired, b.topUp(t, expired.ID).Status)
	res = b.deliver(t, payment.Event{ID: "evt_2", Type: "checkout.session.async_payment_failed", Outcome: payment.Failed,
		ExternalID: "cs_fail", TopUpID: failed.ID})
	require.False(t, res.Credited)
	got := b.topUp(t, failed.ID)
	require.Equal(t, store.TopUpFailed, got.Status)
	require.NotNil(t, got.CompletedAt)
	require.Nil(t, got.TransactionID)
	require.EqualValues(t, 0, b.balance(t))
	require.Equal(t, 0, b.toppedUpEvents(t))
}

func TestEventsAboutOtherCheckoutsAreAcknowledged(t *testing.T) {
	b := setupTopUps(t)
	tu := b.open(t, 500, "cs_mine")
	for _, e := range []payment.Event{
		{ID: "evt_other_type", Type: "payment_intent.succeeded"},
		{ID: "evt_foreign", Type: "checkout.session.completed", Outcome: payment.Paid, ExternalID: "cs_someone_else",
			Amount: 500, Currency: "USD"},
		{ID: "evt_wrong_checkout", Type: "checkout.session.completed", Outcome: payment.Paid, ExternalID: "cs_someone_else",
			TopUpID: tu.ID, Amount: 500, Currency: "USD"},
	} {
		res := b.deliver(t, e)
		require.Nil(t, res.TopUp, e.ID)
		require.False(t, res.Credited, e.ID)
	}
	require.Equal(t, store.TopUpOpen, b.topUp(t, tu.ID).Status)
	require.EqualValues(t, 0, b.balance(t))

	err := b.st.InTx(b.ctx, func(q *store.Queries) error {
		_, err := billing.HandlePaymentEvent(b.ctx, q, "stripe", payment.Event{Type: "x"})
		return err
	})
	require.ErrorIs(t, err, billing.ErrInvalid, "an event without an id")
	_, err = billing.HandlePaymentEvent(b.ctx, b.st.Queries, "stripe", paidEvent("evt_9", tu))
	require.ErrorContains(t, err, "outside a transaction")
}
