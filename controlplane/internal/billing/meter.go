package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"skypanel/controlplane/internal/store"
)

// Period is the length of a metering period; periods start on whole UTC hours.
const Period = time.Hour

// Options configures a Meter.
type Options struct {
	// Store is the database. Required.
	Store *store.Store
	// Logger receives a line per metered period. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// BatchSize is how many resources one transaction charges (an organization's resources
	// stay in one batch up to twice that). Default 1000.
	BatchSize int
	// Workers is how many batches are charged at once, each on its own connection.
	// Default 2.
	Workers int
	// CatchUp is how far back a run looks for periods not metered yet. Default 72h.
	CatchUp time.Duration
	// Delay is how long after a period ends it is metered, so changes recorded at its end by
	// slow transactions (or control planes whose clocks lag a little) are in. Default 1m.
	Delay time.Duration
	// Hook, when set, is called at each step of each batch (from several goroutines when
	// Workers > 1); an error it returns ends the run there (inside a transaction, rolling the
	// batch back). For fault-injection tests.
	Hook func(ctx context.Context, step Step) error
}

// Step is a point in a metering run where Options.Hook is called.
type Step struct {
	Period time.Time
	// Batch counts the period's batches from 0.
	Batch int
	Stage Stage
}

// Stage says where in a batch a Step is.
type Stage int

// The stages of a batch.
const (
	// StageLocked: in the batch's transaction, its wallets locked, nothing written.
	StageLocked Stage = iota + 1
	// StageCharged: in the transaction, charges and debits written, not committed.
	StageCharged
	// StageCommitted: after the batch's commit.
	StageCommitted
)

// Meter charges billable runs, period by period.
type Meter struct {
	opts   Options
	logger *slog.Logger
}

// New validates opts and returns a Meter.
func New(opts Options) (*Meter, error) {
	if opts.Store == nil {
		return nil, errors.New("new meter: store is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 1000
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.CatchUp == 0 {
		opts.CatchUp = 72 * time.Hour
	}
	if opts.Delay == 0 {
		opts.Delay = time.Minute
	}
	if opts.BatchSize < 1 || opts.Workers < 1 || opts.CatchUp < Period || opts.Delay < 0 {
		return nil, errors.New("new meter: batch size and workers must be positive, catch-up at least an hour and delay not negative")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Meter{opts: opts, logger: logger}, nil
}

// PeriodReport is what metering one period did.
type PeriodReport struct {
	Start time.Time
	// Resources counts the resources that ran in the period; Charges the charges this run
	// wrote (fewer when an earlier or concurrent run wrote some); Amount adds them up in
	// minor units.
	Resources int
	Charges   int64
	Amount    int64
	Batches   int
	Elapsed   time.Duration
}

// Run meters every complete period of the last CatchUp that is not metered yet, oldest
// first, and returns what it did; on error, what it did before.
func (m *Meter) Run(ctx context.Context) ([]PeriodReport, error) {
	until := m.meterable()
	from := until.Add(-m.opts.CatchUp)
	done, err := m.opts.Store.MeteredPeriods(ctx, from, until)
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	metered := make(map[time.Time]bool, len(done))
	for _, p := range done {
		metered[p.UTC()] = true
	}
	var reports []PeriodReport
	for p := from; p.Before(until); p = p.Add(Period) {
		if metered[p] {
			continue
		}
		r, err := m.MeterPeriod(ctx, p)
		if err != nil {
			return reports, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// meterable is the end of the last period that may be metered now.
func (m *Meter) meterable() time.Time {
	return m.opts.Now().Add(-m.opts.Delay).UTC().Truncate(Period)
}

// MeterPeriod charges every resource that ran in the period starting at start and is not
// charged for it yet, in batches, then marks the period metered.
func (m *Meter) MeterPeriod(ctx context.Context, start time.Time) (PeriodReport, error) {
	start = start.UTC()
	rep := PeriodReport{Start: start}
	began := time.Now()
	if !start.Equal(start.Truncate(Period)) {
		return rep, fmt.Errorf("meter period %s: %w: a period starts on a whole hour", start.Format(time.RFC3339), ErrInvalid)
	}
	end := start.Add(Period)
	if end.After(m.meterable()) {
		return rep, fmt.Errorf("meter period %s: %w: it has not ended %s ago yet", start.Format(time.RFC3339), ErrInvalid, m.opts.Delay)
	}
	// Close the period first: from then on no run change lands inside it, so one look at
	// what ran finds everything there is to charge.
	if err := m.opts.Store.InTx(ctx, func(q *store.Queries) error {
		return q.ClosePeriod(ctx, start, m.opts.Now())
	}); err != nil {
		return rep, fmt.Errorf("meter period %s: %w", start.Format(time.RFC3339), err)
	}
	keys, err := m.opts.Store.RanResources(ctx, start, end)
	if err != nil {
		return rep, fmt.Errorf("meter period %s: %w", start.Format(time.RFC3339), err)
	}
	rep.Resources = len(keys)
	if err := m.chargeBatches(ctx, &rep, batches(keys, m.opts.BatchSize)); err != nil {
		return rep, fmt.Errorf("meter period %s: %w", start.Format(time.RFC3339), err)
	}
	if err := m.opts.Store.MarkPeriodMetered(ctx, start, m.opts.Now()); err != nil {
		return rep, fmt.Errorf("meter period %s: %w", start.Format(time.RFC3339), err)
	}
	rep.Elapsed = time.Since(began)
	m.logger.Info("period metered", "period_start", start, "resources", rep.Resources, "charges", rep.Charges,
		"amount", rep.Amount, "batches", rep.Batches, "elapsed", rep.Elapsed)
	return rep, nil
}

// batches cuts keys (sorted by organization) into batches of about size, keeping each
// organization's resources in one batch unless they alone are more than size: then each
// organization is charged with one wallet debit per period.
func batches(keys []store.UsageKey, size int) [][]store.UsageKey {
	var out [][]store.UsageKey
	from := 0
	for i := 1; i <= len(keys); i++ {
		if i == len(keys) || i-from >= size && keys[i].OrganizationID != keys[i-1].OrganizationID || i-from >= 2*size {
			out = append(out, keys[from:i])
			from = i
		}
	}
	return out
}

// chargeBatches charges the batches on Options.Workers connections at once: they hold
// different organizations, so they never wait for each other's wallet locks. It stops at
// the first error; a crash loses at most the batches in flight.
func (m *Meter) chargeBatches(ctx context.Context, rep *PeriodReport, all [][]store.UsageKey) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(m.opts.Workers, len(all)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				if first != nil || i >= len(all) {
					mu.Unlock()
					return
				}
				mu.Unlock()
				res, err := m.chargeBatch(ctx, Step{Period: rep.Start, Batch: i}, all[i])
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("batch %d: %w", i, err)
					cancel()
				}
				if err == nil {
					rep.Batches++
					rep.Charges += res.Charges
					rep.Amount += res.Amount
				}
				mu.Unlock()
				if err == nil {
					err = m.hook(ctx, Step{Period: rep.Start, Batch: i}, StageCommitted)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("batch %d: %w", i, err)
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func (m *Meter) chargeBatch(ctx context.Context, step Step, keys []store.UsageKey) (store.UsageResult, error) {
	var res store.UsageResult
	err := m.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if err := q.LockUsageWallets(ctx, keys); err != nil {
			return fmt.Errorf("lock wallets: %w", err)
		}
		if err := m.hook(ctx, step, StageLocked); err != nil {
			return err
		}
		var err error
		res, err = q.ChargeUsage(ctx, keys, step.Period, step.Period.Add(Period), m.opts.Now())
		if err != nil {
			return err
		}
		return m.hook(ctx, step, StageCharged)
	})
	return res, err
}

func (m *Meter) hook(ctx context.Context, step Step, stage Stage) error {
	if m.opts.Hook == nil {
		return nil
	}
	step.Stage = stage
	return m.opts.Hook(ctx, step)
}
