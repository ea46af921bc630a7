package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// Bulk seeding is the one place outside the store that writes SQL: COPY of generated rows
// has no business in the store's typed API, and it only ever touches the benchmark database.

// startBalance is every wallet's opening top-up.
const startBalance = 100_000_000

type bench struct {
	cfg   Config
	st    *store.Store
	logf  func(string, ...any)
	plans []store.Plan
	orgs  []uuid.UUID
	// epoch is the first metered period; round i meters the period i hours later.
	epoch time.Time
}

// round is one metered period.
type round struct {
	report billing.PeriodReport
	runs   int
	check  time.Duration
	// charge and commit add up the batches' stages.
	charge, commit time.Duration
}

// newBench wipes the database (migrations down, then up), creates plans and one funded
// wallet per organization.
func newBench(ctx context.Context, cfg Config, logf func(string, ...any)) (*bench, error) {
	pgCfg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("seed: parse database url: %w", err)
	}
	if !strings.Contains(pgCfg.Database, "bench") {
		return nil, fmt.Errorf("seed: refusing to wipe database %q: a benchmark database's name contains \"bench\"", pgCfg.Database)
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL})
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, st: st, logf: logf, epoch: time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)}
	start := time.Now()
	if _, err := st.MigrateDown(ctx, 0); err != nil {
		st.Close()
		return nil, fmt.Errorf("seed: reset: %w", err)
	}
	if _, err := st.MigrateUp(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("seed: reset: %w", err)
	}
	logf("reset the schema in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	for i, price := range []int64{15, 42, 125, 250} {
		p, err := st.CreatePlan(ctx, store.Plan{Name: fmt.Sprintf("bench-%d", i), CPUMillis: 500 << i, MemoryMiB: 512 << i,
			PricePerHour: price, Currency: "USD", MaxReplicas: 10, MaxApps: 100})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("seed plans: %w", err)
		}
		b.plans = append(b.plans, p)
	}
	b.orgs = make([]uuid.UUID, cfg.Orgs)
	for i := range b.orgs {
		b.orgs[i] = uuid.New()
	}
	at := b.epoch.Add(-time.Hour)
	if err := b.copyRows(ctx, "wallets", []string{"organization_id", "currency", "balance", "created_at", "updated_at"}, cfg.Orgs,
		func(i int) []any { return []any{b.orgs[i], "USD", int64(startBalance), at, at} }); err != nil {
		b.close()
		return nil, err
	}
	if err := b.copyRows(ctx, "wallet_transactions", []string{"organization_id", "kind", "amount", "currency", "balance_after",
		"reason", "actor", "reference", "created_at"}, cfg.Orgs, func(i int) []any {
		return []any{b.orgs[i], billing.KindCredit, int64(startBalance), "USD", int64(startBalance), "", "bench",
			"bench:" + b.orgs[i].String(), at}
	}); err != nil {
		b.close()
		return nil, err
	}
	logf("seeded %d plans and %d funded wallets in %s", len(b.plans), cfg.Orgs, time.Since(start).Round(time.Millisecond))
	return b, nil
}

func (b *bench) close() { b.st.Close() }

func (b *bench) copyRows(ctx context.Context, table string, cols []string, count int, row func(i int) []any) error {
	_, err := b.st.Pool().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(count, func(i int) ([]any, error) {
		return row(i), nil
	}))
	if err != nil {
		return fmt.Errorf("seed %s: %w", table, err)
	}
	return nil
}

// round seeds cfg.Resources resources running in period i (80% all through it, 10% starting
// and 10% stopping in it, quantities 1 to 4, 1% with a price override), meters the period,
// and checks every charge and every wallet against what the seed implies.
func (b *bench) round(ctx context.Context, i int) (round, error) {
	period := b.epoch.Add(time.Duration(i) * time.Hour)
	end := period.Add(time.Hour)
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	n := b.cfg.Resources
	type seeded struct {
		org, id  uuid.UUID
		plan     int
		quantity int
		from, to time.Time
		override *int64
	}
	rs := make([]seeded, n)
	wantByOrg := make(map[uuid.UUID]int64, len(b.orgs))
	for k := range rs {
		r := seeded{org: b.orgs[k%len(b.orgs)], id: uuid.New(), plan: rng.IntN(len(b.plans)), quantity: 1 + rng.IntN(4),
			from: period.Add(-time.Duration(1+rng.IntN(1000)) * time.Minute), to: end.Add(time.Hour)}
		switch p := rng.IntN(10); p {
		case 0:
			r.from = period.Add(time.Duration(rng.Int64N(int64(time.Hour))) / time.Second * time.Second)
		case 1:
			r.to = period.Add(time.Duration(1+rng.Int64N(int64(time.Hour)-1)) / time.Second * time.Second)
			if !r.to.After(period) {
				r.to = period.Add(time.Second)
			}
		}
		price := b.plans[r.plan].PricePerHour
		if rng.IntN(100) == 0 {
			o := rng.Int64N(200)
			r.override, price = &o, o
		}
		from, to := r.from, r.to
		if from.Before(period) {
			from = period
		}
		if to.After(end) {
			to = end
		}
		secs := int64(to.Sub(from) / time.Second)
		wantByOrg[r.org] += (int64(r.quantity)*secs*price + 1800) / 3600
		rs[k] = r
	}
	start := time.Now()
	if err := b.copyRows(ctx, "billable_runs", []string{"organization_id", "resource_type", "resource_id", "plan_id", "quantity",
		"unit_price", "currency", "started_at", "ended_at"}, n, func(k int) []any {
		r := rs[k]
		var ended *time.Time
		if r.to.Before(end) {
			ended = &r.to
		}
		return []any{r.org, "app", r.id, b.plans[r.plan].ID, int32(r.quantity), b.plans[r.plan].PricePerHour, "USD", r.from, ended}
	}); err != nil {
		return round{}, err
	}
	var overrides [][]any
	for _, r := range rs {
		if r.override != nil {
			overrides = append(overrides, []any{"app", r.id, *r.override, period.Add(-time.Hour), "user:bench", "bench"})
		}
	}
	if _, err := b.st.Pool().CopyFrom(ctx, pgx.Identifier{"price_overrides"},
		[]string{"resource_type", "resource_id", "unit_price", "effective_from", "set_by", "reason"}, pgx.CopyFromRows(overrides)); err != nil {
		return round{}, fmt.Errorf("seed price_overrides: %w", err)
	}
	if _, err := b.st.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return round{}, fmt.Errorf("seed: vacuum analyze: %w", err)
	}
	b.logf("round %d: seeded %d runs (%d overrides) in %s", i+1, n, len(overrides), time.Since(start).Round(time.Millisecond))

	// The hook times each batch's charging statement and its commit (summed over the
	// batches, which run on several connections at once).
	var mu sync.Mutex
	var charge, commit time.Duration
	marks := map[int]time.Time{}
	m, err := billing.New(billing.Options{Store: b.st, BatchSize: b.cfg.BatchSize, Workers: b.cfg.Workers,
		Now: func() time.Time { return end.Add(2 * time.Minute) },
		Hook: func(_ context.Context, s billing.Step) error {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			switch s.Stage {
			case billing.StageCharged:
				charge += now.Sub(marks[s.Batch])
			case billing.StageCommitted:
				commit += now.Sub(marks[s.Batch])
			}
			marks[s.Batch] = now
			return nil
		}})
	if err != nil {
		return round{}, err
	}
	rep, err := m.MeterPeriod(ctx, period)
	if err != nil {
		return round{}, err
	}
	// The runs of this round end now, so the next round's period has only its own.
	if _, err := b.st.Pool().Exec(ctx, `UPDATE billable_runs SET ended_at = $1 WHERE ended_at IS NULL OR ended_at > $1`, end); err != nil {
		return round{}, fmt.Errorf("end the round's runs: %w", err)
	}

	// The books: each organization charged what the seed implies, every wallet balanced.
	start = time.Now()
	bad, err := b.st.CheckWalletsBalance(ctx)
	if err != nil {
		return round{}, err
	}
	check := time.Since(start)
	if len(bad) > 0 {
		return round{}, fmt.Errorf("round %d: %d wallets do not match their ledger", i+1, len(bad))
	}
	var charged int64
	for org, want := range wantByOrg {
		got, err := b.st.UsageCharges(ctx, org, period, end)
		if err != nil {
			return round{}, err
		}
		var sum int64
		for _, c := range got {
			sum += c.Amount
		}
		if sum != want {
			return round{}, fmt.Errorf("round %d: organization %s charged %d, want %d", i+1, org, sum, want)
		}
		charged += sum
	}
	if rep.Amount != charged || rep.Charges != int64(n) {
		return round{}, fmt.Errorf("round %d: metered %d charges for %d, want %d for %d", i+1, rep.Charges, rep.Amount, n, charged)
	}
	var runs int
	if err := b.st.Pool().QueryRow(ctx, `SELECT count(*) FROM billable_runs`).Scan(&runs); err != nil {
		return round{}, err
	}
	return round{report: rep, runs: runs, check: check, charge: charge, commit: commit}, nil
}
