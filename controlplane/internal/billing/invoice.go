package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"skypanel/controlplane/internal/store"
)

// Invoice statuses.
const (
	// InvoiceDraft is a month not invoiced yet (the current one, or one whose last hours are
	// still being metered), computed from its charges so far; it has no number.
	InvoiceDraft = "draft"
	// InvoiceIssued is a final invoice, stored once and never changed.
	InvoiceIssued = "issued"
)

// MonthLayout is how invoices name their month (YYYY-MM).
const MonthLayout = "2006-01"

// Invoice is an organization's usage charges for one calendar month (UTC) in one currency:
// a line per resource, the total of the lines. An issued one is stored; a draft (the month
// is not over, or not metered yet) has no ID, number or issue time.
type Invoice struct {
	store.Invoice
	// Status is InvoiceDraft or InvoiceIssued.
	Status string
}

// Month is the invoice's month, YYYY-MM.
func (inv Invoice) Month() string { return inv.PeriodStart.UTC().Format(MonthLayout) }

// InvoiceOptions configures an Invoicer.
type InvoiceOptions struct {
	// Store is the database. Required.
	Store *store.Store
	// Logger receives a line per invoice issued. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// PlatformName heads rendered invoices. Default "SkyPanel".
	PlatformName string
	// CatchUp is how far back metering charges periods it missed (Options.CatchUp): a month
	// that ended longer ago than that is final even if some of its hours were never metered.
	// Default 72h.
	CatchUp time.Duration
	// Lookback is how many finished months back the issuer looks for missing invoices.
	// Default 12.
	Lookback int
	// Delay is how long after every whole hour the periodic job runs (after metering).
	// Default 5m.
	Delay time.Duration
	// Hook, when set, is called in each invoice's transaction once it is written, before the
	// commit; an error it returns rolls that invoice back. For fault-injection tests.
	Hook func(ctx context.Context, inv Invoice) error
}

// Invoicer issues monthly invoices and computes drafts.
type Invoicer struct {
	opts   InvoiceOptions
	logger *slog.Logger
}

// NewInvoicer validates opts and returns an Invoicer.
func NewInvoicer(opts InvoiceOptions) (*Invoicer, error) {
	if opts.Store == nil {
		return nil, errors.New("new invoicer: store is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PlatformName == "" {
		opts.PlatformName = "SkyPanel"
	}
	if opts.CatchUp == 0 {
		opts.CatchUp = 72 * time.Hour
	}
	if opts.Lookback == 0 {
		opts.Lookback = 12
	}
	if opts.Delay == 0 {
		opts.Delay = 5 * time.Minute
	}
	if opts.CatchUp < Period || opts.Lookback < 1 || opts.Delay < 0 {
		return nil, errors.New("new invoicer: catch-up must be at least an hour, lookback positive and delay not negative")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Invoicer{opts: opts, logger: logger}, nil
}

// ParseMonth reads a YYYY-MM month and returns its first instant (UTC).
func ParseMonth(s string) (time.Time, error) {
	t, err := time.Parse(MonthLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: month must be YYYY-MM", ErrInvalid)
	}
	return t.UTC(), nil
}

// monthStart is the first instant (UTC) of t's month.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Final says whether the month starting at start is over and metered, so its invoices may
// be issued: its last hours are metered, or it ended longer than CatchUp ago (metering
// never looks further back).
func (iv *Invoicer) Final(ctx context.Context, start time.Time) (bool, error) {
	start = monthStart(start)
	end := start.AddDate(0, 1, 0)
	now := iv.opts.Now()
	switch {
	case now.Before(end):
		return false, nil
	case now.Sub(end) >= iv.opts.CatchUp:
		return true, nil
	}
	// Every hour of the month metering may still charge must be metered: the ones before
	// its catch-up window were metered, or never will be. (The window ends up to Delay
	// before now; an hour more covers any delay under an hour.)
	from := now.UTC().Truncate(Period).Add(-iv.opts.CatchUp - Period)
	if from.Before(start) {
		from = start
	}
	done, err := iv.opts.Store.MeteredPeriods(ctx, from, end)
	if err != nil {
		return false, fmt.Errorf("invoice month %s: %w", start.Format(MonthLayout), err)
	}
	return len(done) == int(end.Sub(from)/Period), nil
}

// IssueDue issues every missing invoice of the finished months of the last Lookback,
// oldest first, and returns how many it issued. It is idempotent and safe to run on
// several control planes at once: each invoice is issued in one transaction with its
// lines, and the unique key (organization, month, currency) lets only one in. An
// organization that fails is skipped (and reported in the error); the next run retries it.
func (iv *Invoicer) IssueDue(ctx context.Context) (int, error) {
	current := monthStart(iv.opts.Now())
	issued := 0
	var errs []error
	for k := iv.opts.Lookback; k >= 1; k-- {
		start := current.AddDate(0, -k, 0)
		final, err := iv.Final(ctx, start)
		if err != nil {
			return issued, err
		}
		if !final {
			continue
		}
		orgs, err := iv.opts.Store.OrganizationsToInvoice(ctx, start, start.AddDate(0, 1, 0))
		if err != nil {
			return issued, fmt.Errorf("issue invoices %s: %w", start.Format(MonthLayout), err)
		}
		for _, org := range orgs {
			if err := ctx.Err(); err != nil {
				return issued, err
			}
			invs, err := iv.Issue(ctx, org, start)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			issued += len(invs)
		}
	}
	return issued, errors.Join(errs...)
}

// Issue issues the organization's invoices for the month starting at start that are not
// issued yet (one per currency charged) and returns those it issued now. The caller checks
// that the month is final (Final).
func (iv *Invoicer) Issue(ctx context.Context, orgID uuid.UUID, start time.Time) ([]Invoice, error) {
	start = monthStart(start)
	var issued []Invoice
	err := iv.opts.Store.InTx(ctx, func(q *store.Queries) error {
		invs, err := iv.compute(ctx, q, orgID, start)
		if err != nil {
			return err
		}
		now := iv.opts.Now().UTC().Truncate(time.Second)
		for _, inv := range invs {
			inv.Status, inv.IssuedAt = InvoiceIssued, now
			rec, inserted, err := iv.insert(ctx, q, inv)
			if err != nil {
				return err
			}
			if !inserted {
				continue
			}
			inv.Number = rec.Number
			if iv.opts.Hook != nil {
				if err := iv.opts.Hook(ctx, inv); err != nil {
					return err
				}
			}
			issued = append(issued, inv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("issue invoice %s for %s: %w", start.Format(MonthLayout), orgID, err)
	}
	for _, inv := range issued {
		iv.logger.Info("invoice issued", "number", inv.Number, "organization_id", orgID, "month", inv.Month(),
			"currency", inv.Currency, "total", inv.Total, "lines", len(inv.Lines))
	}
	return issued, nil
}

// insert stores inv under the first of its numbers not taken by another invoice.
func (iv *Invoicer) insert(ctx context.Context, q *store.Queries, inv Invoice) (store.Invoice, bool, error) {
	rec := inv.Invoice
	for _, n := range invoiceNumbers(inv.OrganizationID, inv.PeriodStart, inv.Currency) {
		rec.Number = n
		got, inserted, err := q.InsertInvoice(ctx, rec)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return got, inserted, err
	}
	return store.Invoice{}, false, fmt.Errorf("no free invoice number: %w", store.ErrConflict)
}

// invoiceNumbers are an invoice's numbers in order of preference: SP-<YYYYMM>-<the first 8
// hex digits of the organization id>, longer when two organizations share those, and with
// the currency for an organization's second currency in a month.
func invoiceNumbers(orgID uuid.UUID, start time.Time, currency string) []string {
	hex := strings.ToUpper(strings.ReplaceAll(orgID.String(), "-", ""))
	prefix := "SP-" + start.UTC().Format("200601") + "-"
	return []string{prefix + hex[:8], prefix + hex[:12], prefix + hex, prefix + hex + "-" + currency}
}

// Draft computes the organization's invoices for the month starting at start from its
// charges so far, one per currency (none without charges), as drafts.
func (iv *Invoicer) Draft(ctx context.Context, orgID uuid.UUID, start time.Time) ([]Invoice, error) {
	invs, err := iv.compute(ctx, iv.opts.Store.Queries, orgID, monthStart(start))
	if err != nil {
		return nil, fmt.Errorf("draft invoice %s: %w", monthStart(start).Format(MonthLayout), err)
	}
	return invs, nil
}

// compute builds the month's invoices from its usage charges: a line per resource with the
// sum of its charges, described with its name and plan as they are now.
func (iv *Invoicer) compute(ctx context.Context, q *store.Queries, orgID uuid.UUID, start time.Time) ([]Invoice, error) {
	end := start.AddDate(0, 1, 0)
	usage, err := q.ResourceUsages(ctx, store.UsageFilter{OrganizationID: orgID, From: start, To: end})
	if err != nil || len(usage) == 0 {
		return nil, err
	}
	name := orgID.String()
	org, err := q.OrganizationByID(ctx, orgID)
	switch {
	case err == nil:
		name = org.Name
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	byCurrency := map[string]*Invoice{}
	var currencies []string
	for _, u := range usage {
		inv := byCurrency[u.Currency]
		if inv == nil {
			inv = &Invoice{Status: InvoiceDraft, Invoice: store.Invoice{OrganizationID: orgID, OrganizationName: name,
				PeriodStart: start, PeriodEnd: end, Currency: u.Currency}}
			byCurrency[u.Currency] = inv
			currencies = append(currencies, u.Currency)
		}
		inv.Lines = append(inv.Lines, store.InvoiceLine{Line: int32(len(inv.Lines) + 1), ResourceType: u.ResourceType,
			ResourceID: u.ResourceID, Description: lineDescription(u), UnitSeconds: u.UnitSeconds, Amount: u.Amount})
		inv.Total += u.Amount
	}
	slices.Sort(currencies)
	out := make([]Invoice, 0, len(currencies))
	for _, c := range currencies {
		out = append(out, *byCurrency[c])
	}
	return out, nil
}

// lineDescription says what a line charges for, e.g. "App web (plan starter): 720.0
// replica-hours"; a resource gone since is named by its id.
func lineDescription(u store.ResourceUsage) string {
	name := u.Name
	if name == "" {
		name = u.ResourceID.String()
	}
	hours := FormatHours(u.UnitSeconds)
	if u.ResourceType == string(ResourceCluster) {
		return fmt.Sprintf("Dedicated cluster %s: %s hours", name, hours)
	}
	if u.PlanName != "" {
		return fmt.Sprintf("App %s (plan %s): %s replica-hours", name, u.PlanName, hours)
	}
	return fmt.Sprintf("App %s: %s replica-hours", name, hours)
}

// FormatHours writes unit-seconds as hours with one decimal, rounded half up (720.0).
func FormatHours(unitSeconds int64) string {
	tenths := (unitSeconds*10 + 1800) / 3600
	return fmt.Sprintf("%d.%d", tenths/10, tenths%10)
}

// Month returns the organization's invoice for the month starting at start: the issued
// one, else a draft of its charges (for the current month, or a month not issued yet);
// store.ErrNotFound when it has neither. When the month has invoices in several
// currencies, the first by currency code.
func (iv *Invoicer) Month(ctx context.Context, orgID uuid.UUID, start time.Time) (Invoice, error) {
	start = monthStart(start)
	recs, err := iv.opts.Store.InvoicesOfMonth(ctx, orgID, start)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", start.Format(MonthLayout), err)
	}
	if len(recs) > 0 {
		return issuedInvoice(recs[0]), nil
	}
	if start.After(iv.opts.Now()) {
		return Invoice{}, fmt.Errorf("invoice %s: %w", start.Format(MonthLayout), store.ErrNotFound)
	}
	drafts, err := iv.Draft(ctx, orgID, start)
	if err != nil {
		return Invoice{}, err
	}
	if len(drafts) == 0 {
		return Invoice{}, fmt.Errorf("invoice %s: %w", start.Format(MonthLayout), store.ErrNotFound)
	}
	return drafts[0], nil
}

// List returns the organization's invoices, newest month first, without lines: the
// current month's draft (when it has charges), last month's draft while it is not issued
// yet, and every issued invoice.
func (iv *Invoicer) List(ctx context.Context, orgID uuid.UUID) ([]Invoice, error) {
	recs, err := iv.opts.Store.Invoices(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	current := monthStart(iv.opts.Now())
	previous := current.AddDate(0, -1, 0)
	var out []Invoice
	for _, start := range []time.Time{current, previous} {
		if slices.ContainsFunc(recs, func(r store.Invoice) bool { return r.PeriodStart.Equal(start) }) {
			continue
		}
		drafts, err := iv.Draft(ctx, orgID, start)
		if err != nil {
			return nil, fmt.Errorf("list invoices: %w", err)
		}
		for _, d := range drafts {
			d.Lines = nil
			out = append(out, d)
		}
	}
	for _, r := range recs {
		out = append(out, issuedInvoice(r))
	}
	return out, nil
}

func issuedInvoice(r store.Invoice) Invoice {
	r.PeriodStart, r.PeriodEnd, r.IssuedAt = r.PeriodStart.UTC(), r.PeriodEnd.UTC(), r.IssuedAt.UTC()
	return Invoice{Invoice: r, Status: InvoiceIssued}
}

// InvoiceArgs is the hourly durable job that issues the invoices of finished months. Hour
// only makes it unique per hour: a run issues every invoice that is due.
type InvoiceArgs struct {
	Hour time.Time `json:"hour"`
}

// Kind implements river.JobArgs.
func (InvoiceArgs) Kind() string { return "billing.invoice" }

// InsertOpts: one job per hour however many control planes enqueue it; errors are retried,
// and the next hour's run issues whatever is still missing anyway.
func (InvoiceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, Queue: river.QueueDefault, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// InvoiceWorker runs invoicing jobs.
type InvoiceWorker struct {
	river.WorkerDefaults[InvoiceArgs]
	iv *Invoicer
}

// Worker returns the job worker that issues due invoices.
func (iv *Invoicer) Worker() *InvoiceWorker { return &InvoiceWorker{iv: iv} }

// Timeout bounds one run; one cut short leaves every invoice issued whole or not at all.
func (w *InvoiceWorker) Timeout(*river.Job[InvoiceArgs]) time.Duration { return 15 * time.Minute }

// Work implements river.Worker.
func (w *InvoiceWorker) Work(ctx context.Context, _ *river.Job[InvoiceArgs]) error {
	_, err := w.iv.IssueDue(ctx)
	return err
}

// PeriodicJob enqueues InvoiceArgs Delay after every whole hour, and once when the client
// starts. Add it to river.Config.PeriodicJobs.
func (iv *Invoicer) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(hourly{iv.opts.Delay}, func() (river.JobArgs, *river.InsertOpts) {
		return InvoiceArgs{Hour: iv.opts.Now().UTC().Truncate(Period)}, nil
	}, &river.PeriodicJobOpts{ID: "billing.invoice", RunOnStart: true})
}
