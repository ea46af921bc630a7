package billing_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// Many goroutines post debits, adjustments and top-ups to a few wallets at once, and every
// top-up is delivered twice (a webhook retried while the first delivery is in flight): no
// update is lost and no top-up is applied twice.
func TestDebitsAndTopUpsRacingLoseNoUpdate(t *testing.T) {
	b := setup(t)
	const wallets, workers, opsEach = 6, 16, 60
	orgs := make([]uuid.UUID, wallets)
	for i := range orgs {
		orgs[i] = uuid.New()
	}
	var want [wallets]atomic.Int64
	applied := make([]atomic.Int32, workers/2*opsEach)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			twin := rand.New(rand.NewPCG(uint64(w/2), 2)) // the same top-ups as its twin worker
			for i := range opsEach {
				topUp := w/2*opsEach + i
				tw := twin.IntN(wallets)
				credit := billing.Entry{OrganizationID: orgs[tw], Amount: 1 + twin.Int64N(10_000), Currency: "USD",
					Reference: fmt.Sprintf("stripe:evt_%d", topUp), Actor: "stripe"}
				k := rng.IntN(wallets)
				amount := 1 + rng.Int64N(5_000)
				err := b.st.InTx(b.ctx, func(q *store.Queries) error {
					_, ok, err := billing.Credit(b.ctx, q, credit)
					if err != nil || !ok {
						return err
					}
					applied[topUp].Add(1)
					want[tw].Add(credit.Amount)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				err = b.st.InTx(b.ctx, func(q *store.Queries) error {
					e := billing.Entry{OrganizationID: orgs[k], Amount: amount, Currency: "USD",
						Reference: fmt.Sprintf("w%d:%d", w, i), Actor: "test", Reason: "race"}
					var err error
					if i%3 == 0 {
						e.Amount = -e.Amount
						_, _, err = billing.Adjust(b.ctx, q, e)
					} else {
						_, _, err = billing.Debit(b.ctx, q, e)
					}
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				want[k].Add(-amount)
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	for i := range applied {
		require.Equal(t, int32(1), applied[i].Load(), "top-up %d is applied exactly once", i)
	}
	for i, org := range orgs {
		require.Equal(t, want[i].Load(), b.balance(t, org), "wallet %d", i)
	}
	b.requireBooksBalance(t)
}
