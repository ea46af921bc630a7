package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Plan is a size an app runs at, with its price and limits.
type Plan struct {
	ID           uuid.UUID
	Name         string
	Description  string
	CPUMillis    int32
	MemoryMiB    int32
	PricePerHour int64
	Currency     string
	MaxReplicas  int32
	MaxApps      int32
	RetiredAt    *time.Time
	CreatedAt    time.Time
}

const planColumns = `id, name, description, cpu_millis, memory_mib, price_per_hour, currency, max_replicas,
	max_apps, retired_at, created_at`

func scanPlan(row pgx.Row) (Plan, error) {
	var p Plan
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.CPUMillis, &p.MemoryMiB, &p.PricePerHour, &p.Currency,
		&p.MaxReplicas, &p.MaxApps, &p.RetiredAt, &p.CreatedAt)
	return p, mapErr(err)
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}

// CreatePlan inserts a plan. ErrConflict when the name is taken.
func (q *Queries) CreatePlan(ctx context.Context, p Plan) (Plan, error) {
	return scanPlan(q.db.QueryRow(ctx, `
		INSERT INTO plans (name, description, cpu_millis, memory_mib, price_per_hour, currency, max_replicas, max_apps)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+planColumns,
		p.Name, p.Description, p.CPUMillis, p.MemoryMiB, p.PricePerHour, p.Currency, p.MaxReplicas, p.MaxApps))
}

// UpdatePlan changes a plan's fields (not its retirement).
func (q *Queries) UpdatePlan(ctx context.Context, p Plan) (Plan, error) {
	return scanPlan(q.db.QueryRow(ctx, `
		UPDATE plans SET name = $2, description = $3, cpu_millis = $4, memory_mib = $5, price_per_hour = $6,
			currency = $7, max_replicas = $8, max_apps = $9, updated_at = now()
		WHERE id = $1 RETURNING `+planColumns,
		p.ID, p.Name, p.Description, p.CPUMillis, p.MemoryMiB, p.PricePerHour, p.Currency, p.MaxReplicas, p.MaxApps))
}

// RetirePlan marks a plan retired (once; retiring again keeps the first time).
func (q *Queries) RetirePlan(ctx context.Context, id uuid.UUID) (Plan, error) {
	return scanPlan(q.db.QueryRow(ctx, `
		UPDATE plans SET retired_at = coalesce(retired_at, now()), updated_at = now()
		WHERE id = $1 RETURNING `+planColumns, id))
}

// PlanByID returns one plan.
func (q *Queries) PlanByID(ctx context.Context, id uuid.UUID) (Plan, error) {
	return scanPlan(q.db.QueryRow(ctx, `SELECT `+planColumns+` FROM plans WHERE id = $1`, id))
}

// Plans lists plans by price, then name; retired ones only when asked.
func (q *Queries) Plans(ctx context.Context, includeRetired bool) ([]Plan, error) {
	rows, err := q.db.Query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE $1 OR retired_at IS NULL ORDER BY price_per_hour, cpu_millis, name`, includeRetired)
	return collect(rows, err, scanPlan)
}
