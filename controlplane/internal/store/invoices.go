package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Invoices: one per organization, calendar month and currency, issued once and never
// changed (the tables refuse updates and deletes). Package billing decides when a month is
// invoiced and what its lines say; these are its queries.

// Invoice is an issued monthly invoice.
type Invoice struct {
	ID               uuid.UUID
	Number           string
	OrganizationID   uuid.UUID
	OrganizationName string
	PeriodStart      time.Time
	PeriodEnd        time.Time
	Currency         string
	Total            int64
	IssuedAt         time.Time
	// Lines are loaded by InvoicesOfMonth, not by Invoices.
	Lines []InvoiceLine
}

// InvoiceLine is one resource's charges on an invoice.
type InvoiceLine struct {
	// Line counts from 1.
	Line         int32
	ResourceType string
	ResourceID   uuid.UUID
	Description  string
	UnitSeconds  int64
	Amount       int64
}

const invoiceColumns = `id, number, organization_id, organization_name, period_start, period_end, currency, total, issued_at`

func scanInvoice(row pgx.Row) (Invoice, error) {
	var i Invoice
	err := row.Scan(&i.ID, &i.Number, &i.OrganizationID, &i.OrganizationName, &i.PeriodStart, &i.PeriodEnd, &i.Currency,
		&i.Total, &i.IssuedAt)
	return i, mapErr(err)
}

// OrganizationsToInvoice lists the organizations with usage charges in periods starting in
// [start, end) and no invoice for the month starting at start in their wallet's currency,
// by id. It probes the wallets one index lookup each: organizations invoiced already cost
// one lookup and their charges are not read. (Charges are always in the wallet's currency,
// which never changes; see ChargeUsage.)
func (q *Queries) OrganizationsToInvoice(ctx context.Context, start, end time.Time) ([]uuid.UUID, error) {
	rows, err := q.db.Query(ctx, `
		SELECT w.organization_id FROM wallets w
		WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.organization_id = w.organization_id
				AND i.period_start = $1 AND i.currency = w.currency)
			AND EXISTS (SELECT 1 FROM usage_charges u WHERE u.organization_id = w.organization_id
				AND u.period_start >= $1 AND u.period_start < $2)
		ORDER BY w.organization_id`, start, end)
	return collect(rows, err, func(row pgx.Row) (uuid.UUID, error) {
		var id uuid.UUID
		return id, mapErr(row.Scan(&id))
	})
}

// InsertInvoice issues inv with its lines, unless the organization has an invoice for that
// month and currency already: then it returns that one (without lines) and false. When
// inv.Number is taken by another invoice it returns ErrConflict and writes nothing, so the
// caller may try another number. Call it in a transaction: the invoice and its lines commit
// together or not at all, and a concurrent issuer of the same invoice waits for this one
// and then finds it.
func (q *Queries) InsertInvoice(ctx context.Context, inv Invoice) (Invoice, bool, error) {
	if q.tx == nil {
		return Invoice{}, false, errors.New("insert invoice: outside a transaction")
	}
	got, err := scanInvoice(q.db.QueryRow(ctx, `
		INSERT INTO invoices (number, organization_id, organization_name, period_start, period_end, currency, total, issued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING
		RETURNING `+invoiceColumns,
		inv.Number, inv.OrganizationID, inv.OrganizationName, inv.PeriodStart, inv.PeriodEnd, inv.Currency, inv.Total,
		inv.IssuedAt))
	if errors.Is(err, ErrNotFound) {
		prev, err := scanInvoice(q.db.QueryRow(ctx, `SELECT `+invoiceColumns+` FROM invoices
			WHERE organization_id = $1 AND period_start = $2 AND currency = $3`, inv.OrganizationID, inv.PeriodStart, inv.Currency))
		if errors.Is(err, ErrNotFound) {
			return Invoice{}, false, fmt.Errorf("insert invoice: number %s: %w", inv.Number, ErrConflict)
		}
		if err != nil {
			return Invoice{}, false, fmt.Errorf("insert invoice: %w", err)
		}
		return prev, false, nil
	}
	if err != nil {
		return Invoice{}, false, fmt.Errorf("insert invoice: %w", err)
	}
	n := len(inv.Lines)
	lines, types, ids := make([]int32, n), make([]string, n), make([]uuid.UUID, n)
	descriptions, seconds, amounts := make([]string, n), make([]int64, n), make([]int64, n)
	for i, l := range inv.Lines {
		lines[i], types[i], ids[i], descriptions[i], seconds[i], amounts[i] =
			l.Line, l.ResourceType, l.ResourceID, l.Description, l.UnitSeconds, l.Amount
	}
	if _, err := q.db.Exec(ctx, `
		INSERT INTO invoice_lines (invoice_id, line, resource_type, resource_id, description, unit_seconds, amount)
		SELECT $1::uuid, * FROM unnest($2::int[], $3::text[], $4::uuid[], $5::text[], $6::bigint[], $7::bigint[])`,
		got.ID, lines, types, ids, descriptions, seconds, amounts); err != nil {
		return Invoice{}, false, fmt.Errorf("insert invoice lines: %w", mapErr(err))
	}
	got.Lines = inv.Lines
	return got, true, nil
}

// Invoices lists an organization's issued invoices, newest month first, without lines.
func (q *Queries) Invoices(ctx context.Context, orgID uuid.UUID) ([]Invoice, error) {
	rows, err := q.db.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE organization_id = $1
		ORDER BY period_start DESC, currency`, orgID)
	return collect(rows, err, scanInvoice)
}

// InvoicesOfMonth returns an organization's issued invoices for the month starting at
// start (one per currency), with their lines.
func (q *Queries) InvoicesOfMonth(ctx context.Context, orgID uuid.UUID, start time.Time) ([]Invoice, error) {
	rows, err := q.db.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE organization_id = $1 AND period_start = $2
		ORDER BY currency`, orgID, start)
	invs, err := collect(rows, err, scanInvoice)
	if err != nil || len(invs) == 0 {
		return invs, err
	}
	ids := make([]uuid.UUID, len(invs))
	byID := make(map[uuid.UUID]int, len(invs))
	for i, inv := range invs {
		ids[i], byID[inv.ID] = inv.ID, i
	}
	rows, err = q.db.Query(ctx, `SELECT invoice_id, line, resource_type, resource_id, description, unit_seconds, amount
		FROM invoice_lines WHERE invoice_id = ANY($1) ORDER BY invoice_id, line`, ids)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var l InvoiceLine
		if err := rows.Scan(&id, &l.Line, &l.ResourceType, &l.ResourceID, &l.Description, &l.UnitSeconds, &l.Amount); err != nil {
			return nil, mapErr(err)
		}
		inv := &invs[byID[id]]
		inv.Lines = append(inv.Lines, l)
	}
	return invs, mapErr(rows.Err())
}
