package billing

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
)

// RenderInvoiceCSV writes an invoice as CSV: a header row, a row per line and a total row.
// Amounts are in major units with the currency's decimals.
func RenderInvoiceCSV(inv Invoice) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	number := inv.Number
	if number == "" {
		number = "DRAFT"
	}
	rows := [][]string{{"invoice", "month", "line", "description", "resource_type", "resource_id", "hours", "unit_seconds",
		"amount", "currency"}}
	for _, l := range inv.Lines {
		rows = append(rows, []string{number, inv.Month(), strconv.Itoa(int(l.Line)), CSVText(l.Description), l.ResourceType,
			l.ResourceID.String(), FormatHours(l.UnitSeconds), strconv.FormatInt(l.UnitSeconds, 10),
			FormatAmount(l.Amount, inv.Currency), inv.Currency})
	}
	rows = append(rows, []string{number, inv.Month(), "", "Total", "", "", "", "", FormatAmount(inv.Total, inv.Currency),
		inv.Currency})
	if err := w.WriteAll(rows); err != nil {
		return nil, fmt.Errorf("render invoice csv: %w", err)
	}
	return buf.Bytes(), nil
}

// CSVText makes text taken from tenants (app names) safe for spreadsheets: a cell starting
// with =, +, -, @, a tab or a carriage return would be read as a formula, so it gets a
// leading apostrophe.
func CSVText(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
