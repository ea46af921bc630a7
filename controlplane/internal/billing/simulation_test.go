package billing_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// The simulation: 1,000 organizations × 10 apps (and a dedicated cluster for every tenth
// organization) start, scale, change plan and stop at random times over 72 simulated hours,
// with plan price changes and admin overrides, while billing runs are skipped (control plane
// down), crash at random points, and run three at once, and top-ups race them. At the end
// every (resource, hour) is charged exactly what the test computes on its own from the same
// random schedule, and every wallet holds exactly its top-ups minus its charges.
//
// SKYPANEL_BILLING_SEED replays a run; -short runs 100 organizations.

const simHours = 72

// simEvent is a resource's new state from at on.
type simEvent struct {
	at       time.Time
	quantity int
	plan     int // index into simPlans; -1 for a cluster
}

type simResource struct {
	billing.Resource
	contract  int64 // a cluster's unit price
	events    []simEvent
	overrides []simOverride
}

type simOverride struct {
	from  time.Time
	price *int64
}

type simPlan struct {
	store.Plan
	prices []store.PlanPrice // in force from EffectiveFrom, oldest first
}

type chargeKey struct {
	resource uuid.UUID
	hour     int
}

type simCharge struct {
	unitSeconds, amount int64
}

func TestSimulationChargesEveryOrganizationExactly(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SKYPANEL_BILLING_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (SKYPANEL_BILLING_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	nOrgs := 1000
	if testing.Short() {
		nOrgs = 100
	}
	began := time.Now()
	b := setup(t)

	// Plans, and price changes in hours 30 (mid-hour: from hour 31) and 50 (on the hour).
	var plans []simPlan
	for i, price := range []int64{13, 42, 125, 250, 997} {
		p := b.plan(t, fmt.Sprintf("sim-%d", i), price)
		plans = append(plans, simPlan{Plan: p, prices: []store.PlanPrice{{PlanID: p.ID, PricePerHour: price}}})
	}
	for _, c := range []struct {
		plan  int
		price int64
		at    time.Time
	}{{1, 47, t0.Add(30*time.Hour + 17*time.Minute)}, {3, 240, t0.Add(50 * time.Hour)}} {
		pp := store.PlanPrice{PlanID: plans[c.plan].ID, PricePerHour: c.price, EffectiveFrom: c.at}
		require.NoError(t, b.st.InsertPlanPrice(b.ctx, pp))
		plans[c.plan].prices = append(plans[c.plan].prices, pp)
	}

	// The organizations, their resources and their random schedules.
	orgs := make([]uuid.UUID, nOrgs)
	var resources []*simResource
	randomTime := func() time.Time { return t0.Add(time.Duration(rng.Int64N(int64(simHours * time.Hour)))) }
	for o := range orgs {
		orgs[o] = uuid.New()
		n := 10
		if o%10 == 0 {
			n++
		}
		for i := range n {
			r := &simResource{Resource: billing.Resource{Type: billing.ResourceApp, ID: uuid.New(), OrganizationID: orgs[o]}}
			plan := rng.IntN(len(plans))
			if i == 10 {
				r.Type, plan, r.contract = billing.ResourceCluster, -1, 300+rng.Int64N(600)
			}
			for range rng.IntN(7) {
				e := simEvent{at: randomTime(), plan: plan}
				if rng.IntN(10) < 7 {
					e.quantity = 1 + rng.IntN(4)
				}
				if plan >= 0 && rng.IntN(10) == 0 {
					e.plan = rng.IntN(len(plans))
					plan = e.plan
				}
				r.events = append(r.events, e)
			}
			slices.SortFunc(r.events, func(a, b simEvent) int { return a.at.Compare(b.at) })
			if rng.IntN(50) == 0 {
				price := rng.Int64N(500)
				from := randomTime()
				r.overrides = append(r.overrides, simOverride{from: from, price: &price})
				if rng.IntN(2) == 0 {
					r.overrides = append(r.overrides, simOverride{from: from.Add(time.Duration(rng.Int64N(int64(20 * time.Hour))))})
				}
			}
			resources = append(resources, r)
		}
	}

	// Overrides are recorded up front: only those in force at a period's start count.
	b.tx(t, func(q *store.Queries) error {
		for _, r := range resources {
			for _, o := range r.overrides {
				if _, err := billing.SetPriceOverride(b.ctx, q, billing.Override{Type: r.Type, ID: r.ID, UnitPrice: o.price,
					EffectiveFrom: o.from, SetBy: "user:admin", Reason: "simulated"}); err != nil {
					return err
				}
			}
		}
		return nil
	})

	// Every organization starts with a top-up.
	topUps := make(map[uuid.UUID]int64, nOrgs)
	b.tx(t, func(q *store.Queries) error {
		for _, org := range orgs {
			if _, _, err := billing.Credit(b.ctx, q, billing.Entry{OrganizationID: org, Amount: 1_000_000, Currency: "USD",
				Reference: "seed:" + org.String(), Actor: "test", At: t0}); err != nil {
				return err
			}
			topUps[org] += 1_000_000
		}
		return nil
	})
	t.Logf("set up %d organizations, %d resources in %s", nOrgs, len(resources), time.Since(began).Round(time.Millisecond))

	// The simulated hours.
	var stats struct{ skipped, crashed, concurrent, normal, runs int }
	var topUpSeq int
	for h := range simHours {
		b.applyEvents(t, resources, plans, t0.Add(time.Duration(h)*time.Hour))
		b.now = t0.Add(time.Duration(h+1)*time.Hour + 2*time.Minute)

		var runners []func() error
		switch p := rng.Float64(); {
		case p < 0.12:
			stats.skipped++
		case p < 0.35:
			stats.crashed++
			runners = append(runners, b.crashingRun(t, rng))
		case p < 0.55:
			stats.concurrent++
			for range 3 {
				if rng.IntN(2) == 0 {
					runners = append(runners, b.crashingRun(t, rng))
				} else {
					runners = append(runners, b.normalRun)
				}
			}
		default:
			stats.normal++
			runners = append(runners, b.normalRun)
		}
		// Top-ups race the runs; a third are delivered twice.
		var credits []billing.Entry
		for range 10 {
			topUpSeq++
			e := billing.Entry{OrganizationID: orgs[rng.IntN(nOrgs)], Amount: 1 + rng.Int64N(10_000), Currency: "USD",
				Reference: fmt.Sprintf("stripe:evt_%d", topUpSeq), Actor: "stripe", At: b.now}
			credits = append(credits, e)
			topUps[e.OrganizationID] += e.Amount
			if rng.IntN(3) == 0 {
				credits = append(credits, e)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(runners)+1)
		for i, run := range runners {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = run() }()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range credits {
				if err := b.st.InTx(b.ctx, func(q *store.Queries) error {
					_, _, err := billing.Credit(b.ctx, q, e)
					return err
				}); err != nil {
					errs[len(runners)] = err
					return
				}
			}
		}()
		wg.Wait()
		stats.runs += len(runners)
		for _, err := range errs {
			require.NoError(t, err, "hour %d", h)
		}
	}
	b.applyEvents(t, resources, plans, t0.Add(simHours*time.Hour)) // none: all events are in the 72 h
	b.now = t0.Add(simHours*time.Hour + 2*time.Minute)
	require.NoError(t, b.normalRun(), "the last run catches up")
	t.Logf("%d hours: %d skipped, %d with a crashing run, %d with three runs at once, %d with one run; %d runs",
		simHours, stats.skipped, stats.crashed, stats.concurrent, stats.normal, stats.runs)

	// What each (resource, hour) should cost, computed from the schedule alone.
	want := map[chargeKey]simCharge{}
	for _, r := range resources {
		expectCharges(r, plans, want)
	}
	got := make(map[chargeKey]simCharge, len(want))
	charged := make(map[uuid.UUID]int64, nOrgs)
	require.NoError(t, b.st.AllUsageCharges(b.ctx, func(c store.UsageCharge) error {
		k := chargeKey{c.ResourceID, int(c.PeriodStart.Sub(t0) / time.Hour)}
		if _, dup := got[k]; dup {
			return fmt.Errorf("resource %s charged twice for hour %d", c.ResourceID, k.hour)
		}
		got[k] = simCharge{c.UnitSeconds, c.Amount}
		charged[c.OrganizationID] += c.Amount
		return nil
	}))
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "resource %s hour %d (%+v) is charged", k.resource, k.hour, w)
		require.Equal(t, w, g, "resource %s hour %d", k.resource, k.hour)
	}
	require.Len(t, got, len(want), "nothing is charged that did not run")
	wantByOrg := make(map[uuid.UUID]int64, nOrgs)
	var total int64
	for _, w := range want {
		total += w.amount
	}
	for _, r := range resources {
		for h := range simHours {
			wantByOrg[r.OrganizationID] += want[chargeKey{r.ID, h}].amount
		}
	}
	for _, org := range orgs {
		require.Equal(t, wantByOrg[org], charged[org], "organization %s is charged what it ran", org)
		require.Equal(t, topUps[org]-wantByOrg[org], b.balance(t, org), "organization %s's wallet", org)
	}
	b.requireBooksBalance(t)
	periods, err := b.st.MeteredPeriods(b.ctx, t0, t0.Add(simHours*time.Hour))
	require.NoError(t, err)
	require.Len(t, periods, simHours)
	t.Logf("%d charges, %d minor units in all; simulation took %s", len(want), total, time.Since(began).Round(time.Millisecond))
}

// applyEvents records the events of the hour starting at from, in one transaction; a
// resource's events in the hour go in order, a round each.
func (b *bundle) applyEvents(t *testing.T, resources []*simResource, plans []simPlan, from time.Time) {
	t.Helper()
	to := from.Add(time.Hour)
	var rounds [][]billing.Run
	for _, r := range resources {
		n := 0
		for _, e := range r.events {
			if e.at.Before(from) || !e.at.Before(to) {
				continue
			}
			run := billing.Run{Resource: r.Resource, Quantity: e.quantity, Currency: "USD", At: e.at, UnitPrice: r.contract}
			if e.plan >= 0 {
				run.PlanID = &plans[e.plan].ID
				run.UnitPrice = plans[e.plan].PricePerHour
			}
			if n == len(rounds) {
				rounds = append(rounds, nil)
			}
			rounds[n] = append(rounds[n], run)
			n++
		}
	}
	b.tx(t, func(q *store.Queries) error {
		for _, round := range rounds {
			if err := billing.SetRunningMany(b.ctx, q, round); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *bundle) normalRun() error {
	m, err := billing.New(billing.Options{Store: b.st, Now: func() time.Time { return b.now }})
	if err != nil {
		return err
	}
	_, err = m.Run(b.ctx)
	return err
}

var errCrash = errors.New("simulated crash")

// crashingRun returns a run that dies at a random point: its hook fails in a random stage
// of a random batch, or its context is cancelled after a few milliseconds (the connection
// drops mid-statement).
func (b *bundle) crashingRun(t *testing.T, rng *rand.Rand) func() error {
	t.Helper()
	ctx, cancel := b.ctx, context.CancelFunc(func() {})
	if rng.IntN(3) == 0 {
		ctx, cancel = context.WithTimeout(b.ctx, time.Duration(1+rng.IntN(40))*time.Millisecond)
	}
	failAt, stage := int64(rng.IntN(12)), billing.Stage(1+rng.IntN(3))
	var calls atomic.Int64
	m, err := billing.New(billing.Options{Store: b.st, Now: func() time.Time { return b.now },
		Hook: func(_ context.Context, s billing.Step) error {
			if s.Stage == stage && calls.Add(1) > failAt {
				return errCrash
			}
			return nil
		}})
	require.NoError(t, err)
	return func() error {
		defer cancel()
		_, err := m.Run(ctx)
		if err == nil || errors.Is(err, errCrash) || ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// expectCharges adds what r costs in each simulated hour to want: per second, quantity ×
// the price in force at the hour's start, rounded half up once per hour.
func expectCharges(r *simResource, plans []simPlan, want map[chargeKey]simCharge) {
	type segment struct {
		from, to int64 // unix seconds
		quantity int
		plan     int
	}
	var segs []segment
	end := t0.Add(simHours * time.Hour).Unix()
	cur := segment{}
	for _, e := range r.events {
		if e.quantity == cur.quantity && (e.quantity == 0 || e.plan == cur.plan) {
			continue // the same state again: the run goes on
		}
		at := e.at.Unix()
		if cur.quantity > 0 && at > cur.from {
			cur.to = at
			segs = append(segs, cur)
		}
		cur = segment{from: at, quantity: e.quantity, plan: e.plan}
	}
	if cur.quantity > 0 && end > cur.from {
		cur.to = end
		segs = append(segs, cur)
	}
	for h := range simHours {
		hs := t0.Add(time.Duration(h) * time.Hour)
		lo, hi := hs.Unix(), hs.Unix()+3600
		var unitSeconds, num int64
		for _, s := range segs {
			secs := min(s.to, hi) - max(s.from, lo)
			if secs <= 0 {
				continue
			}
			price := priceAt(r, plans, s.plan, hs)
			unitSeconds += int64(s.quantity) * secs
			num += int64(s.quantity) * secs * price
		}
		if unitSeconds > 0 {
			want[chargeKey{r.ID, h}] = simCharge{unitSeconds, (num + 1800) / 3600}
		}
	}
}

func priceAt(r *simResource, plans []simPlan, plan int, at time.Time) int64 {
	var override *simOverride
	for i, o := range r.overrides {
		if !o.from.After(at) && (override == nil || !o.from.Before(override.from)) {
			override = &r.overrides[i]
		}
	}
	if override != nil && override.price != nil {
		return *override.price
	}
	if plan < 0 {
		return r.contract
	}
	var price int64
	for _, p := range plans[plan].prices {
		if !p.EffectiveFrom.After(at) {
			price = p.PricePerHour
		}
	}
	return price
}
