package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// Report buckets.
const (
	BucketHour = "hour"
	BucketDay  = "day"
)

// Limits of report ranges.
const (
	// MaxReportRange bounds a usage report or export.
	MaxReportRange = 92 * 24 * time.Hour
	// MaxAnalyticsRange bounds the platform analytics.
	MaxAnalyticsRange = 400 * 24 * time.Hour
	// hourlyUpTo is the longest range a report defaults to hourly buckets for.
	hourlyUpTo = 7 * 24 * time.Hour
)

// FieldError is input refused before anything was read: Field names the request field and
// Reason the rule. It matches ErrInvalid.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ResolveRange resolves a requested range: to defaults to now, from to `def` before to; from must
// be before to and the range at most limit. Errors are *FieldError naming "from".
func ResolveRange(from, to *time.Time, now time.Time, def, limit time.Duration) (time.Time, time.Time, error) {
	end := now.UTC()
	if to != nil {
		end = to.UTC()
	}
	start := end.Add(-def)
	if from != nil {
		start = from.UTC()
	}
	switch {
	case !start.Before(end):
		return start, end, &FieldError{Field: "from", Reason: "must be before to"}
	case end.Sub(start) > limit:
		return start, end, &FieldError{Field: "from", Reason: fmt.Sprintf("the range may span at most %d days", int(limit/(24*time.Hour)))}
	}
	return start, end, nil
}

// ReportRequest asks for an organization's usage over a range.
type ReportRequest struct {
	OrganizationID uuid.UUID
	// AppID, when set, narrows the report to that app (of the organization: another
	// organization's app matches nothing).
	AppID *uuid.UUID
	// From and To bound the report; nil: the last 24 hours up to now. At most 92 days.
	From, To *time.Time
	// Bucket is BucketHour or BucketDay; empty: hourly up to 7 days, daily beyond.
	Bucket string
}

// Report is an organization's usage over a range: a point per bucket (every bucket of the
// range, zero when nothing was charged, so charts are continuous), a total per resource and
// the grand total.
type Report struct {
	// From is the requested start rounded down to its bucket; To is as requested. Charges
	// of the hours starting in [From, To) count.
	From, To  time.Time
	Bucket    string
	Points    []store.UsagePoint
	Resources []store.ResourceUsage
	Total     int64
	// Currency is the charges' (the wallet's) currency; empty when the organization never
	// paid for anything.
	Currency string
}

// filter validates req and returns the store filter and bucket it means.
func (req ReportRequest) filter(now time.Time) (store.UsageFilter, string, error) {
	from, to, err := ResolveRange(req.From, req.To, now, 24*time.Hour, MaxReportRange)
	if err != nil {
		return store.UsageFilter{}, "", err
	}
	bucket := req.Bucket
	switch bucket {
	case "":
		bucket = BucketHour
		if to.Sub(from) > hourlyUpTo {
			bucket = BucketDay
		}
	case BucketHour, BucketDay:
	default:
		return store.UsageFilter{}, "", &FieldError{Field: "bucket", Reason: "must be hour or day"}
	}
	return store.UsageFilter{OrganizationID: req.OrganizationID, AppID: req.AppID, From: bucketStart(from, bucket), To: to},
		bucket, nil
}

// bucketStart rounds t down to the start of its bucket (UTC).
func bucketStart(t time.Time, bucket string) time.Time {
	t = t.UTC()
	if bucket == BucketDay {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

func nextBucket(t time.Time, bucket string) time.Time {
	if bucket == BucketDay {
		return t.AddDate(0, 0, 1)
	}
	return t.Add(time.Hour)
}

// UsageReport sums an organization's usage charges per bucket and per resource.
func UsageReport(ctx context.Context, st *store.Store, req ReportRequest, now time.Time) (Report, error) {
	f, bucket, err := req.filter(now)
	if err != nil {
		return Report{}, err
	}
	rep := Report{From: f.From, To: f.To, Bucket: bucket}
	points, err := st.UsageSeries(ctx, f, bucket)
	if err != nil {
		return Report{}, fmt.Errorf("usage report: %w", err)
	}
	if rep.Resources, err = st.ResourceUsages(ctx, f); err != nil {
		return Report{}, fmt.Errorf("usage report: %w", err)
	}
	i := 0
	for b := f.From; b.Before(f.To); b = nextBucket(b, bucket) {
		p := store.UsagePoint{Start: b}
		if i < len(points) && points[i].Start.Equal(b) {
			p = points[i]
			p.Start = b
			i++
		}
		rep.Points = append(rep.Points, p)
	}
	for _, r := range rep.Resources {
		rep.Total += r.Amount
		rep.Currency = r.Currency
	}
	if rep.Currency == "" {
		w, err := st.Wallet(ctx, req.OrganizationID)
		switch {
		case err == nil:
			rep.Currency = w.Currency
		case !errors.Is(err, store.ErrNotFound):
			return Report{}, fmt.Errorf("usage report: %w", err)
		}
	}
	return rep, nil
}

// ExportUsage writes an organization's usage charges as CSV, one row per resource and hour
// (period start in RFC 3339, resource type, id and name, unit-seconds, unit price, amount,
// currency; prices and amounts in major units). The range rules are UsageReport's; the
// bucket is ignored.
func ExportUsage(ctx context.Context, st *store.Store, req ReportRequest, now time.Time) (Document, error) {
	req.Bucket = BucketHour
	f, _, err := req.filter(now)
	if err != nil {
		return Document{}, err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write([]string{"period_start", "resource_type", "resource_id", "name", "unit_seconds", "unit_price",
		"amount", "currency"}); err != nil {
		return Document{}, fmt.Errorf("export usage: %w", err)
	}
	err = st.UsageRows(ctx, f, func(r store.UsageRow) error {
		return w.Write([]string{r.PeriodStart.UTC().Format(time.RFC3339), r.ResourceType, r.ResourceID.String(),
			CSVText(r.Name), strconv.FormatInt(r.UnitSeconds, 10), FormatAmount(r.UnitPrice, r.Currency),
			FormatAmount(r.Amount, r.Currency), r.Currency})
	})
	if err != nil {
		return Document{}, fmt.Errorf("export usage: %w", err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return Document{}, fmt.Errorf("export usage: %w", err)
	}
	name := fmt.Sprintf("skypanel-usage-%s-%s.csv", f.From.Format("20060102T1504Z"), f.To.UTC().Format("20060102T1504Z"))
	return Document{Filename: name, ContentType: "text/csv; charset=utf-8", Content: buf.Bytes()}, nil
}

// Analytics is the platform's revenue, top-ups, apps and capacity over a range.
type Analytics struct {
	From, To time.Time
	// RevenueByDay and RevenueByMonth sum usage charges per UTC day or month and currency
	// (the first and last month only over the part of them in the range).
	RevenueByDay   []store.Revenue
	RevenueByMonth []store.Revenue
	// TopUps sums the top-ups paid in the range per currency (payments received through the
	// payment provider; admins' manual credits are not payments and are not counted).
	TopUps       []store.Revenue
	AppsByStatus []store.AppStatusCount
	Clusters     []store.ClusterCapacity
	// TopOrganizations are the ten organizations charged most in the range.
	TopOrganizations []store.OrganizationSpend
}

// PlatformAnalytics computes Analytics; from and to default to the 30 days up to now and
// may span at most 400 days.
func PlatformAnalytics(ctx context.Context, st *store.Store, from, to *time.Time, now time.Time) (Analytics, error) {
	start, end, err := ResolveRange(from, to, now, 30*24*time.Hour, MaxAnalyticsRange)
	if err != nil {
		return Analytics{}, err
	}
	a := Analytics{From: start, To: end}
	if a.RevenueByDay, err = st.RevenueByDay(ctx, start, end); err != nil {
		return Analytics{}, fmt.Errorf("analytics: %w", err)
	}
	a.RevenueByMonth = revenueByMonth(a.RevenueByDay)
	if a.TopUps, err = st.PaidTopUps(ctx, start, end); err != nil {
		return Analytics{}, fmt.Errorf("analytics: %w", err)
	}
	if a.AppsByStatus, err = st.AppsByStatus(ctx); err != nil {
		return Analytics{}, fmt.Errorf("analytics: %w", err)
	}
	if a.Clusters, err = st.ClusterCapacities(ctx); err != nil {
		return Analytics{}, fmt.Errorf("analytics: %w", err)
	}
	if a.TopOrganizations, err = st.TopSpenders(ctx, start, end, 10); err != nil {
		return Analytics{}, fmt.Errorf("analytics: %w", err)
	}
	return a, nil
}

// revenueByMonth adds daily revenue up per month and currency, oldest first.
func revenueByMonth(days []store.Revenue) []store.Revenue {
	type key struct {
		month    time.Time
		currency string
	}
	sums := map[key]int64{}
	var keys []key
	for _, d := range days {
		k := key{monthStart(d.Start), d.Currency}
		if _, ok := sums[k]; !ok {
			keys = append(keys, k)
		}
		sums[k] += d.Amount
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := a.month.Compare(b.month); c != 0 {
			return c
		}
		if a.currency < b.currency {
			return -1
		}
		if a.currency > b.currency {
			return 1
		}
		return 0
	})
	out := make([]store.Revenue, 0, len(keys))
	for _, k := range keys {
		out = append(out, store.Revenue{Start: k.month, Currency: k.currency, Amount: sums[k]})
	}
	return out
}
