package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Usage reports and platform analytics: read-only sums over the usage ledger, top-ups, apps
// and cluster capacity. Every organization-scoped query filters on the organization first,
// so an app id of another organization matches nothing.

// UsageFilter selects an organization's usage charges of periods starting in [From, To),
// optionally of one app.
type UsageFilter struct {
	OrganizationID uuid.UUID
	// AppID, when set, keeps only that app's charges.
	AppID    *uuid.UUID
	From, To time.Time
}

// ResourceUsage is one resource's usage over a range, in one currency.
type ResourceUsage struct {
	ResourceType string
	ResourceID   uuid.UUID
	// Name is the app's or cluster's name now; empty when it no longer exists.
	Name string
	// PlanName is an app's plan now; empty for clusters and deleted apps.
	PlanName    string
	Currency    string
	UnitSeconds int64
	Amount      int64
}

// usageWhere is the WHERE clause of a UsageFilter on usage_charges u, with $1..$4.
const usageWhere = ` WHERE u.organization_id = $1 AND u.period_start >= $2 AND u.period_start < $3
	AND ($4::uuid IS NULL OR (u.resource_type = 'app' AND u.resource_id = $4)) `

// usageNames joins the names of the resources of usage_charges u: apps of the same
// organization (with their plan) and clusters.
const usageNames = ` LEFT JOIN apps a ON u.resource_type = 'app' AND a.id = u.resource_id
		AND a.organization_id = u.organization_id
	LEFT JOIN plans p ON p.id = a.plan_id
	LEFT JOIN clusters c ON u.resource_type = 'cluster' AND c.id = u.resource_id `

// ResourceUsages sums the filter's charges per resource and currency, ordered by resource
// type, name and id.
func (q *Queries) ResourceUsages(ctx context.Context, f UsageFilter) ([]ResourceUsage, error) {
	rows, err := q.db.Query(ctx, `
		SELECT u.resource_type, u.resource_id, coalesce(a.name, c.name, ''), coalesce(p.name, ''), u.currency,
			sum(u.unit_seconds)::bigint, sum(u.amount)::bigint
		FROM usage_charges u`+usageNames+usageWhere+`
		GROUP BY u.resource_type, u.resource_id, a.name, c.name, p.name, u.currency
		ORDER BY u.resource_type, coalesce(a.name, c.name, ''), u.resource_id, u.currency`,
		f.OrganizationID, f.From, f.To, f.AppID)
	return collect(rows, err, func(row pgx.Row) (ResourceUsage, error) {
		var r ResourceUsage
		err := row.Scan(&r.ResourceType, &r.ResourceID, &r.Name, &r.PlanName, &r.Currency, &r.UnitSeconds, &r.Amount)
		return r, mapErr(err)
	})
}

// UsagePoint is the usage of one bucket of a series.
type UsagePoint struct {
	Start       time.Time
	UnitSeconds int64
	Amount      int64
}

// UsageSeries sums the filter's charges per bucket ("hour" or "day", UTC), oldest first;
// buckets without charges are left out.
func (q *Queries) UsageSeries(ctx context.Context, f UsageFilter, bucket string) ([]UsagePoint, error) {
	if bucket != "hour" && bucket != "day" {
		return nil, fmt.Errorf("usage series: bucket %q is not hour or day", bucket)
	}
	rows, err := q.db.Query(ctx, `
		SELECT date_trunc($5::text, u.period_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
			sum(u.unit_seconds)::bigint, sum(u.amount)::bigint
		FROM usage_charges u`+usageWhere+`
		GROUP BY bucket ORDER BY bucket`,
		f.OrganizationID, f.From, f.To, f.AppID, bucket)
	return collect(rows, err, func(row pgx.Row) (UsagePoint, error) {
		var p UsagePoint
		err := row.Scan(&p.Start, &p.UnitSeconds, &p.Amount)
		return p, mapErr(err)
	})
}

// UsageRow is one usage charge with its resource's name.
type UsageRow struct {
	UsageCharge
	// Name is the app's or cluster's name now; empty when it no longer exists.
	Name string
}

// UsageRows streams the filter's charges to fn, oldest period first, then by resource.
func (q *Queries) UsageRows(ctx context.Context, f UsageFilter, fn func(UsageRow) error) error {
	rows, err := q.db.Query(ctx, `
		SELECT u.id, u.organization_id, u.resource_type, u.resource_id, u.period_start, u.period_end, u.unit_seconds,
			u.unit_price, u.amount, u.currency, u.created_at, coalesce(a.name, c.name, '')
		FROM usage_charges u`+usageNames+usageWhere+`
		ORDER BY u.period_start, u.resource_type, coalesce(a.name, c.name, ''), u.resource_id`,
		f.OrganizationID, f.From, f.To, f.AppID)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r UsageRow
		u := &r.UsageCharge
		if err := rows.Scan(&u.ID, &u.OrganizationID, &u.ResourceType, &u.ResourceID, &u.PeriodStart, &u.PeriodEnd,
			&u.UnitSeconds, &u.UnitPrice, &u.Amount, &u.Currency, &u.CreatedAt, &r.Name); err != nil {
			return mapErr(err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// Revenue is an amount in one currency for the period (day or month) starting at Start.
type Revenue struct {
	Start    time.Time
	Currency string
	Amount   int64
}

// RevenueByDay sums every organization's usage charges of periods starting in [from, to)
// per UTC day and currency, oldest first. It reads every charge of the range: for the
// platform admins' analytics, not for request paths of tenants.
func (q *Queries) RevenueByDay(ctx context.Context, from, to time.Time) ([]Revenue, error) {
	rows, err := q.db.Query(ctx, `
		SELECT date_trunc('day', period_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day, currency,
			sum(amount)::bigint
		FROM usage_charges WHERE period_start >= $1 AND period_start < $2
		GROUP BY day, currency ORDER BY day, currency`, from, to)
	return collect(rows, err, scanRevenue)
}

// PaidTopUps sums the top-ups paid (completed) in [from, to) per currency.
func (q *Queries) PaidTopUps(ctx context.Context, from, to time.Time) ([]Revenue, error) {
	rows, err := q.db.Query(ctx, `
		SELECT $1::timestamptz, currency, sum(amount)::bigint FROM top_ups
		WHERE status = 'paid' AND completed_at >= $1 AND completed_at < $2
		GROUP BY currency ORDER BY currency`, from, to)
	return collect(rows, err, scanRevenue)
}

func scanRevenue(row pgx.Row) (Revenue, error) {
	var r Revenue
	err := row.Scan(&r.Start, &r.Currency, &r.Amount)
	return r, mapErr(err)
}

// OrganizationSpend is what an organization was charged over a range, in one currency.
type OrganizationSpend struct {
	OrganizationID uuid.UUID
	// Name is empty when the organization no longer exists.
	Name     string
	Currency string
	Amount   int64
}

// TopSpenders lists the limit organizations (and currencies) with the most usage charged
// in periods starting in [from, to), most first.
func (q *Queries) TopSpenders(ctx context.Context, from, to time.Time, limit int) ([]OrganizationSpend, error) {
	rows, err := q.db.Query(ctx, `
		SELECT s.organization_id, coalesce(o.name, ''), s.currency, s.amount
		FROM (SELECT organization_id, currency, sum(amount)::bigint AS amount FROM usage_charges
			WHERE period_start >= $1 AND period_start < $2
			GROUP BY organization_id, currency ORDER BY amount DESC, organization_id LIMIT $3) s
		LEFT JOIN organizations o ON o.id = s.organization_id
		ORDER BY s.amount DESC, s.organization_id`, from, to, limit)
	return collect(rows, err, func(row pgx.Row) (OrganizationSpend, error) {
		var s OrganizationSpend
		err := row.Scan(&s.OrganizationID, &s.Name, &s.Currency, &s.Amount)
		return s, mapErr(err)
	})
}

// AppStatusCount is how many apps are in one status.
type AppStatusCount struct {
	Status string
	Count  int64
}

// AppsByStatus counts every app of the platform by status: deleting, suspended, deploying
// (its latest deployment has not finished), stopped (0 replicas wanted), running (the
// latest report shows every wanted replica running), failed (none running and the latest
// deployment failed) or degraded. It is the rule of the API's app status (api.appStatus),
// computed in one query from the latest deployment and service report.
func (q *Queries) AppsByStatus(ctx context.Context) ([]AppStatusCount, error) {
	rows, err := q.db.Query(ctx, `
		WITH s AS (
			SELECT a.id, a.replicas, a.deleting, a.suspended, d.state AS last_state, d.finished_at,
				d.id IS NOT NULL AS deployed,
				coalesce((SELECT count(*) FROM jsonb_array_elements(sv.tasks) t
					WHERE t->>'state' = 'running'
						AND coalesce(t->>'desiredState', t->>'desired_state') = 'running'), 0) AS running
			FROM apps a
			LEFT JOIN LATERAL (SELECT d.id, d.state, d.finished_at FROM deployments d WHERE d.app_id = a.id
				ORDER BY d.created_at DESC LIMIT 1) d ON true
			LEFT JOIN app_services sv ON sv.app_id = a.id
		)
		SELECT CASE
				WHEN deleting THEN 'deleting'
				WHEN suspended THEN 'suspended'
				WHEN deployed AND finished_at IS NULL THEN 'deploying'
				WHEN replicas = 0 THEN 'stopped'
				WHEN running >= replicas THEN 'running'
				WHEN running = 0 AND last_state = 'failed' THEN 'failed'
				ELSE 'degraded' END AS status,
			count(*)
		FROM s GROUP BY status ORDER BY status`)
	return collect(rows, err, func(row pgx.Row) (AppStatusCount, error) {
		var c AppStatusCount
		err := row.Scan(&c.Status, &c.Count)
		return c, mapErr(err)
	})
}
