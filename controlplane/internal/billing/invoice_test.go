package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// jan and feb are the months of the invoice tests, around t0.
var (
	jan = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	feb = time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
)

func (b *bundle) invoicer(t *testing.T, hook func(context.Context, billing.Invoice) error) *billing.Invoicer {
	t.Helper()
	iv, err := billing.NewInvoicer(billing.InvoiceOptions{Store: b.st, Now: func() time.Time { return b.now }, Hook: hook})
	require.NoError(t, err)
	return iv
}

// invoiceFixture is an organization with a named app on a plan, an app deleted since and a
// dedicated cluster, which ran across the end of January 2030, metered.
type invoiceFixture struct {
	org              store.Organization
	web, gone, dedic billing.Resource
	cluster          store.Cluster
}

func (b *bundle) invoiceFixture(t *testing.T) invoiceFixture {
	t.Helper()
	var f invoiceFixture
	var err error
	f.org, err = b.st.InsertOrganization(b.ctx, "Acme Corp", "acme")
	require.NoError(t, err)
	starter := b.plan(t, "starter", 30)
	f.cluster, err = b.st.CreateCluster(b.ctx, store.Cluster{ID: uuid.New(), Name: "eu-dedicated", GossipKeySealed: "x"})
	require.NoError(t, err)
	f.web = app(f.org.ID, &starter)
	_, err = b.st.InsertApp(b.ctx, store.App{ID: f.web.ID, OrganizationID: f.org.ID, Name: "web", PlanID: starter.ID,
		ClusterID: f.cluster.ID, Spec: []byte{}, Replicas: 2})
	require.NoError(t, err)
	f.gone = app(f.org.ID, nil)
	f.dedic = billing.Resource{Type: billing.ResourceCluster, ID: f.cluster.ID, OrganizationID: f.org.ID}

	end := feb
	b.setRunning(t, f.gone, 1, 10, end.Add(-150*time.Minute)) // 21:30–23:00: 1.5 h × 10
	b.setRunning(t, f.gone, 0, 0, end.Add(-time.Hour))
	b.setRunning(t, f.web, 2, 30, end.Add(-2*time.Hour)) // 22:00–02:00 at 2 × 30
	b.setRunning(t, f.web, 0, 0, end.Add(2*time.Hour))
	b.setRunning(t, f.dedic, 1, 100, end.Add(-time.Hour)) // 23:00–01:00 at 100
	b.setRunning(t, f.dedic, 0, 0, end.Add(time.Hour))
	return f
}

func TestInvoiceOfAFinishedMonthIsItsChargesExactly(t *testing.T) {
	b := setup(t)
	f := b.invoiceFixture(t)
	iv := b.invoicer(t, nil)

	// Three hours into February the last hour of January is not metered yet: nothing is
	// issued, January is still a draft.
	b.now = feb.Add(3 * time.Hour)
	for _, h := range []time.Duration{-3 * time.Hour, -2 * time.Hour} {
		_, err := b.meter.MeterPeriod(b.ctx, feb.Add(h))
		require.NoError(t, err)
	}
	final, err := iv.Final(b.ctx, jan)
	require.NoError(t, err)
	require.False(t, final)
	n, err := iv.IssueDue(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	draft, err := iv.Month(b.ctx, f.org.ID, jan)
	require.NoError(t, err)
	require.Equal(t, billing.InvoiceDraft, draft.Status)
	require.EqualValues(t, 60+15, draft.Total, "the hours metered so far")

	_, err = b.meter.Run(b.ctx)
	require.NoError(t, err)
	final, err = iv.Final(b.ctx, jan)
	require.NoError(t, err)
	require.True(t, final, "January's last hours are metered")
	n, err = iv.IssueDue(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	inv, err := iv.Month(b.ctx, f.org.ID, jan)
	require.NoError(t, err)
	require.Equal(t, billing.InvoiceIssued, inv.Status)
	require.Equal(t, "SP-203001-"+strings.ToUpper(strings.ReplaceAll(f.org.ID.String(), "-", ""))[:8], inv.Number)
	require.Equal(t, "Acme Corp", inv.OrganizationName)
	require.Equal(t, "USD", inv.Currency)
	require.True(t, inv.PeriodStart.Equal(jan) && inv.PeriodEnd.Equal(feb))
	require.True(t, inv.IssuedAt.Equal(b.now))

	// Every January charge is on it, summed per resource.
	want := map[uuid.UUID]int64{}
	var wantTotal int64
	for _, c := range b.charges(t, f.org.ID) {
		if !c.PeriodStart.Before(jan) && c.PeriodStart.Before(feb) {
			want[c.ResourceID] += c.Amount
			wantTotal += c.Amount
		}
	}
	got := map[uuid.UUID]int64{}
	var sum int64
	for _, l := range inv.Lines {
		got[l.ResourceID] += l.Amount
		sum += l.Amount
	}
	require.Equal(t, want, got)
	require.Equal(t, wantTotal, inv.Total)
	require.Equal(t, sum, inv.Total)
	require.EqualValues(t, 120+15+100, inv.Total)
	var descriptions []string
	for _, l := range inv.Lines {
		descriptions = append(descriptions, l.Description)
	}
	require.Equal(t, []string{
		"App " + f.gone.ID.String() + ": 1.5 replica-hours",
		"App web (plan starter): 4.0 replica-hours",
		"Dedicated cluster eu-dedicated: 1.0 hours",
	}, descriptions, "names and plans as they are now; a deleted app by its id")

	// February is the current month: a draft of its charges so far, without a number.
	cur, err := iv.Month(b.ctx, f.org.ID, feb)
	require.NoError(t, err)
	require.Equal(t, billing.InvoiceDraft, cur.Status)
	require.Empty(t, cur.Number)
	require.EqualValues(t, 120+100, cur.Total)
	list, err := iv.List(b.ctx, f.org.ID)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, []string{"2030-02", "2030-01"}, []string{list[0].Month(), list[1].Month()})
	require.Equal(t, []string{billing.InvoiceDraft, billing.InvoiceIssued}, []string{list[0].Status, list[1].Status})

	_, err = iv.Month(b.ctx, f.org.ID, jan.AddDate(0, -1, 0))
	require.ErrorIs(t, err, store.ErrNotFound, "a month without charges has no invoice")
	_, err = iv.Month(b.ctx, f.org.ID, feb.AddDate(0, 1, 0))
	require.ErrorIs(t, err, store.ErrNotFound)

	// Issued invoices do not change: a later run issues nothing more.
	b.now = feb.Add(10 * 24 * time.Hour)
	n, err = iv.IssueDue(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	again, err := iv.Month(b.ctx, f.org.ID, jan)
	require.NoError(t, err)
	require.Equal(t, inv, again)

	// PDF: deterministic, with the number, organization and total readable.
	doc, err := iv.Render(inv, "pdf")
	require.NoError(t, err)
	require.Equal(t, "skypanel-invoice-2030-01.pdf", doc.Filename)
	require.Equal(t, "application/pdf", doc.ContentType)
	require.True(t, bytes.HasPrefix(doc.Content, []byte("%PDF")))
	for _, s := range []string{inv.Number, "Acme Corp", "2.35 USD", "App web \\(plan starter\\): 4.0 replica-hours", "1.20"} {
		require.Contains(t, string(doc.Content), s)
	}
	doc2, err := iv.Render(inv, "pdf")
	require.NoError(t, err)
	require.True(t, bytes.Equal(doc.Content, doc2.Content), "the same invoice renders the same bytes")
	draftPDF, err := iv.Render(cur, "pdf")
	require.NoError(t, err)
	require.Equal(t, "skypanel-invoice-2030-02-draft.pdf", draftPDF.Filename)
	require.Contains(t, string(draftPDF.Content), "DRAFT \x97 not final", "an em dash in Windows-1252")

	// CSV: a header, a row per line, the total.
	doc, err = iv.Render(inv, "csv")
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(doc.Content)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+3+1)
	require.Equal(t, []string{"invoice", "month", "line", "description", "resource_type", "resource_id", "hours",
		"unit_seconds", "amount", "currency"}, rows[0])
	require.Equal(t, []string{inv.Number, "2030-01", "2", "App web (plan starter): 4.0 replica-hours", "app",
		f.web.ID.String(), "4.0", "14400", "1.20", "USD"}, rows[2])
	require.Equal(t, []string{inv.Number, "2030-01", "", "Total", "", "", "", "", "2.35", "USD"}, rows[4])
}

func TestIssuingTwiceConcurrentlyOrAfterACrashIssuesEachInvoiceOnce(t *testing.T) {
	b := setup(t)
	// Two organizations whose ids share their first 8 hex digits (the number's usual
	// suffix), and a third.
	orgs := []uuid.UUID{
		uuid.MustParse("0001a2b3-0000-4000-8000-000000000001"),
		uuid.MustParse("0001a2b3-1111-4000-8000-000000000002"),
		uuid.New(),
	}
	start := feb.Add(-5 * time.Hour)
	for i, org := range orgs {
		for j := 0; j <= i; j++ {
			b.setRunning(t, app(org, nil), j+1, 7, start)
		}
	}
	b.now = feb.Add(2 * time.Hour)
	_, err := b.meter.Run(b.ctx)
	require.NoError(t, err)

	// A crash after writing the first invoice, before its commit: nothing of it remains.
	crash := errors.New("crash")
	var crashed sync.Once
	faulty := b.invoicer(t, func(_ context.Context, inv billing.Invoice) error {
		err := error(nil)
		crashed.Do(func() { err = crash })
		return err
	})
	n, err := faulty.IssueDue(b.ctx)
	require.ErrorIs(t, err, crash)
	require.Equal(t, 2, n, "the others are issued")
	var invoices, lines int
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM invoice_lines)`).
		Scan(&invoices, &lines))
	require.Equal(t, 2, invoices)

	// Four issuers at once issue the missing one exactly once.
	iv := b.invoicer(t, nil)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			counts[i], err = iv.IssueDue(b.ctx)
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, 1, counts[0]+counts[1]+counts[2]+counts[3])

	numbers := map[string]bool{}
	for i, org := range orgs {
		invs, err := b.st.InvoicesOfMonth(b.ctx, org, jan)
		require.NoError(t, err)
		require.Len(t, invs, 1)
		inv := invs[0]
		require.Len(t, inv.Lines, i+1, "a line per resource")
		var sum int64
		for _, l := range inv.Lines {
			sum += l.Amount
		}
		require.Equal(t, sum, inv.Total)
		var want int64
		for _, c := range b.charges(t, org) {
			if c.PeriodStart.Before(feb) {
				want += c.Amount
			}
		}
		require.Equal(t, want, inv.Total)
		require.False(t, numbers[inv.Number], "numbers are unique")
		numbers[inv.Number] = true
	}
	require.True(t, numbers["SP-203001-0001A2B3"])
	require.True(t, numbers["SP-203001-0001A2B30000"] || numbers["SP-203001-0001A2B31111"],
		"the second organization with the same prefix gets a longer number")
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM invoice_lines)`).
		Scan(&invoices, &lines))
	require.Equal(t, 3, invoices)
	require.Equal(t, 1+2+3, lines)
}

func TestAMonthIsFinalOnceMeteringCannotReachIt(t *testing.T) {
	b := setup(t)
	iv := b.invoicer(t, nil)
	for _, c := range []struct {
		now   time.Time
		final bool
	}{
		{feb.Add(-time.Minute), false},
		{feb.Add(71 * time.Hour), false}, // nothing metered
		{feb.Add(72 * time.Hour), true},
	} {
		b.now = c.now
		final, err := iv.Final(b.ctx, jan)
		require.NoError(t, err)
		require.Equal(t, c.final, final, "at %s", c.now)
	}
}

func TestAmountsAreFormattedWithTheCurrencysDecimals(t *testing.T) {
	for _, c := range []struct {
		amount   int64
		currency string
		plain    string
		grouped  string
	}{
		{0, "USD", "0.00", "0.00"},
		{5, "USD", "0.05", "0.05"},
		{123456789, "EUR", "1234567.89", "1,234,567.89"},
		{-1500, "USD", "-15.00", "-15.00"},
		{1500, "JPY", "1500", "1,500"},
		{1500, "KWD", "1.500", "1.500"},
	} {
		require.Equal(t, c.plain, billing.FormatAmount(c.amount, c.currency))
		require.Equal(t, c.grouped, billing.FormatAmountGrouped(c.amount, c.currency))
	}
	require.Equal(t, "'=HYPERLINK(1)", billing.CSVText("=HYPERLINK(1)"))
	require.Equal(t, "'-1", billing.CSVText("-1"))
	require.Equal(t, "web", billing.CSVText("web"))
}
