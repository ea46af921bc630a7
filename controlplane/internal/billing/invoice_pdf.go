package billing

import (
	"bytes"
	"fmt"
	"time"

	"github.com/go-pdf/fpdf"
)

// Page geometry of rendered invoices, in millimetres (A4 portrait).
const (
	pdfMargin      = 18.0
	pdfHoursWidth  = 28.0
	pdfAmountWidth = 36.0
	pdfLineHeight  = 5.5
)

// RenderInvoicePDF renders an invoice as an A4 PDF headed by platform: the number (or
// "DRAFT — not final"), the organization, the period, a table of lines and the total.
// The output depends only on its arguments: the document's dates are the invoice's (its
// issue time, or a draft's period start), and its streams are not compressed, so the text
// can be searched in tests. Text is set in the PDF core fonts (Windows-1252): characters
// outside it print as dots.
func RenderInvoicePDF(inv Invoice, platform string) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCatalogSort(true) // fonts in a fixed order, not the map's
	at := inv.IssuedAt
	if at.IsZero() {
		at = inv.PeriodStart
	}
	pdf.SetCreationDate(at.UTC())
	pdf.SetModificationDate(at.UTC())
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	title := "Invoice " + inv.Number
	if inv.Status == InvoiceDraft {
		title = "Draft invoice " + inv.Month()
	}
	pdf.SetTitle(title, true)
	pdf.SetCreator(platform, true)
	pdf.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	pdf.SetAutoPageBreak(false, pdfMargin)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(func() {
		pdf.SetXY(pdfMargin, -pdfMargin+4)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(120, 120, 120)
		pdf.CellFormat(0, 4, tr(fmt.Sprintf("%s · %s · page %d/{nb}", platform, title, pdf.PageNo())), "", 0, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	pdf.AddPage()
	pageW, pageH := pdf.GetPageSize()
	width := pageW - 2*pdfMargin
	descWidth := width - pdfHoursWidth - pdfAmountWidth

	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(width/2, 10, tr(platform), "", 0, "L", false, 0, "")
	pdf.SetFont("Helvetica", "B", 14)
	heading := "Invoice " + inv.Number
	if inv.Status == InvoiceDraft {
		heading = "DRAFT — not final"
		pdf.SetTextColor(190, 30, 30)
	}
	pdf.CellFormat(width/2, 10, tr(heading), "", 1, "R", false, 0, "")
	pdf.SetTextColor(0, 0, 0)
	pdf.Ln(6)

	last := inv.PeriodEnd.Add(-time.Second)
	facts := [][2]string{
		{"Organization", inv.OrganizationName},
		{"Period", fmt.Sprintf("%s to %s (UTC)", inv.PeriodStart.UTC().Format("2 January 2006"), last.UTC().Format("2 January 2006"))},
		{"Currency", inv.Currency},
	}
	if inv.Status == InvoiceDraft {
		facts = append(facts, [2]string{"Status", "Draft: the month is not over or not fully metered yet; amounts may still grow."})
	} else {
		facts = append([][2]string{{"Invoice number", inv.Number}}, facts...)
		facts = append(facts, [2]string{"Issued", inv.IssuedAt.UTC().Format("2 January 2006")})
	}
	for _, f := range facts {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(35, 6, tr(f[0]), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.CellFormat(width-35, 6, tr(f[1]), "", 1, "L", false, 0, "")
	}
	pdf.Ln(8)

	header := func() {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.SetFillColor(235, 238, 243)
		pdf.CellFormat(descWidth, 7, "Description", "B", 0, "L", true, 0, "")
		pdf.CellFormat(pdfHoursWidth, 7, "Hours", "B", 0, "R", true, 0, "")
		pdf.CellFormat(pdfAmountWidth, 7, tr("Amount ("+inv.Currency+")"), "B", 1, "R", true, 0, "")
		pdf.SetFont("Helvetica", "", 10)
	}
	header()
	bottom := pageH - pdfMargin - 8
	for _, l := range inv.Lines {
		lines := pdf.SplitLines([]byte(tr(l.Description)), descWidth-2)
		h := float64(len(lines))*pdfLineHeight + 1.5
		if pdf.GetY()+h > bottom {
			pdf.AddPage()
			header()
		}
		y := pdf.GetY()
		for i, text := range lines {
			pdf.SetXY(pdfMargin, y+0.75+float64(i)*pdfLineHeight)
			pdf.CellFormat(descWidth, pdfLineHeight, string(text), "", 0, "L", false, 0, "")
		}
		pdf.SetXY(pdfMargin+descWidth, y+0.75)
		pdf.CellFormat(pdfHoursWidth, pdfLineHeight, FormatHours(l.UnitSeconds), "", 0, "R", false, 0, "")
		pdf.CellFormat(pdfAmountWidth, pdfLineHeight, FormatAmountGrouped(l.Amount, inv.Currency), "", 0, "R", false, 0, "")
		pdf.SetDrawColor(220, 220, 220)
		pdf.Line(pdfMargin, y+h, pdfMargin+width, y+h)
		pdf.SetDrawColor(0, 0, 0)
		pdf.SetXY(pdfMargin, y+h)
	}
	if pdf.GetY()+20 > bottom {
		pdf.AddPage()
	}
	pdf.Ln(2)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.CellFormat(descWidth+pdfHoursWidth, 8, tr("Total ("+inv.Currency+")"), "T", 0, "L", false, 0, "")
	pdf.CellFormat(pdfAmountWidth, 8, FormatAmountGrouped(inv.Total, inv.Currency)+" "+tr(inv.Currency), "T", 1, "R", false, 0, "")
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "", 8)
	pdf.SetTextColor(90, 90, 90)
	pdf.MultiCell(width, 4, tr("Usage is metered per second and charged per hour (UTC) at the price in force at the start "+
		"of each hour; each line sums a resource's hourly charges of the month. Charges were paid from the prepaid "+
		"wallet as they were metered."), "", "L", false)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render invoice pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// Document is a rendered file to download.
type Document struct {
	Filename    string
	ContentType string
	Content     []byte
}

// Render renders an invoice as "pdf" or "csv", named skypanel-invoice-YYYY-MM.<format>
// (with -draft for a draft).
func (iv *Invoicer) Render(inv Invoice, format string) (Document, error) {
	name := "skypanel-invoice-" + inv.Month()
	if inv.Status == InvoiceDraft {
		name += "-draft"
	}
	switch format {
	case "pdf":
		b, err := RenderInvoicePDF(inv, iv.opts.PlatformName)
		return Document{Filename: name + ".pdf", ContentType: "application/pdf", Content: b}, err
	case "csv":
		b, err := RenderInvoiceCSV(inv)
		return Document{Filename: name + ".csv", ContentType: "text/csv; charset=utf-8", Content: b}, err
	}
	return Document{}, fmt.Errorf("render invoice: %w: format must be pdf or csv", ErrInvalid)
}
