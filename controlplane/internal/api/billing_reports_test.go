package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
)

// charge is a usage charge fixture: resource ran at 1 unit for the hour at, at price.
type charge struct {
	org, resource uuid.UUID
	at            time.Time
	price         int64
}

// insertCharges writes the charges and their organizations' USD wallets in one
// transaction, as metering would (the invoicing job may run at any moment).
func insertCharges(t *testing.T, env *testenv.Env, cs ...charge) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, env.Store.InTx(ctx, func(q *store.Queries) error {
		for _, c := range cs {
			if _, err := q.Tx().Exec(ctx, `INSERT INTO wallets (organization_id, currency) VALUES ($1, 'USD')
				ON CONFLICT DO NOTHING`, c.org); err != nil {
				return err
			}
			if _, err := q.Tx().Exec(ctx, `INSERT INTO usage_charges (organization_id, resource_type, resource_id,
					period_start, period_end, unit_seconds, unit_price, amount, currency)
				VALUES ($1, 'app', $2, $3::timestamptz, $3::timestamptz + interval '1 hour', 3600, $4, $4, 'USD')`, c.org, c.resource, c.at, c.price); err != nil {
				return err
			}
		}
		return nil
	}))
}

func TestInvoicesAreListedFetchedAndDownloadedByOrganizationAdmins(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	owner := env.NewUser(t, "owner@example.com")
	viewer := env.NewUser(t, "viewer@example.com")
	stranger := env.NewUser(t, "stranger@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	env.NewOrg(t, stranger, "Elsewhere")
	require.NoError(t, env.Store.AddMember(ctx, orgID, viewer.ID, store.RoleViewer))
	asOwner := testenv.Client(env, billingv1connect.NewBillingServiceClient, owner.Token)

	now := time.Now().UTC()
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	old := thisMonth.AddDate(0, -2, 0)
	web, worker := uuid.New(), uuid.New()
	insertCharges(t, env,
		charge{orgID, web, old.Add(5 * time.Hour), 120}, charge{orgID, web, old.Add(6 * time.Hour), 120},
		charge{orgID, worker, old.Add(7 * time.Hour), 35},
		charge{orgID, web, now.Truncate(time.Hour), 99})
	iv, err := billing.NewInvoicer(billing.InvoiceOptions{Store: env.Store})
	require.NoError(t, err)
	_, err = iv.IssueDue(ctx) // the server's hourly job may have issued it already: once either way
	require.NoError(t, err)

	list, err := asOwner.ListInvoices(ctx, connect.NewRequest(&billingv1.ListInvoicesRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetInvoices(), 2)
	draft, issued := list.Msg.GetInvoices()[0], list.Msg.GetInvoices()[1]
	require.Equal(t, "draft", draft.GetStatus())
	require.Equal(t, thisMonth.Format("2006-01"), draft.GetMonth())
	require.EqualValues(t, 99, draft.GetTotal())
	require.Empty(t, draft.GetNumber())
	require.Equal(t, "issued", issued.GetStatus())
	require.Equal(t, old.Format("2006-01"), issued.GetMonth())
	require.EqualValues(t, 275, issued.GetTotal())
	require.NotEmpty(t, issued.GetNumber())
	require.Empty(t, issued.GetLines(), "lists carry no lines")

	got, err := asOwner.GetInvoice(ctx, connect.NewRequest(&billingv1.GetInvoiceRequest{OrganizationId: orgID.String(),
		Month: old.Format("2006-01")}))
	require.NoError(t, err)
	require.Equal(t, issued.GetNumber(), got.Msg.GetInvoice().GetNumber())
	require.Equal(t, "Acme", got.Msg.GetInvoice().GetOrganizationName())
	require.Len(t, got.Msg.GetInvoice().GetLines(), 2)
	var sum int64
	for _, l := range got.Msg.GetInvoice().GetLines() {
		sum += l.GetAmount()
	}
	require.EqualValues(t, 275, sum)

	_, err = asOwner.GetInvoice(ctx, connect.NewRequest(&billingv1.GetInvoiceRequest{OrganizationId: orgID.String(),
		Month: old.AddDate(0, -1, 0).Format("2006-01")}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "a month without charges")
	_, err = asOwner.GetInvoice(ctx, connect.NewRequest(&billingv1.GetInvoiceRequest{OrganizationId: orgID.String(), Month: "2026-13"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	pdf, err := asOwner.DownloadInvoice(ctx, connect.NewRequest(&billingv1.DownloadInvoiceRequest{OrganizationId: orgID.String(),
		Month: old.Format("2006-01"), Format: "pdf"}))
	require.NoError(t, err)
	require.Equal(t, "skypanel-invoice-"+old.Format("2006-01")+".pdf", pdf.Msg.GetFile().GetFilename())
	require.Equal(t, "application/pdf", pdf.Msg.GetFile().GetContentType())
	require.True(t, bytes.HasPrefix(pdf.Msg.GetFile().GetContent(), []byte("%PDF")))
	require.Contains(t, string(pdf.Msg.GetFile().GetContent()), issued.GetNumber())
	require.Contains(t, string(pdf.Msg.GetFile().GetContent()), "2.75 USD")
	cur, err := asOwner.DownloadInvoice(ctx, connect.NewRequest(&billingv1.DownloadInvoiceRequest{OrganizationId: orgID.String(),
		Month: thisMonth.Format("2006-01"), Format: "csv"}))
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(cur.Msg.GetFile().GetContent())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3, "header, a line, the total")
	require.Equal(t, []string{"DRAFT", thisMonth.Format("2006-01"), "", "Total", "", "", "", "", "0.99", "USD"}, rows[2])

	// Invoices are for the organization's admins: not its viewers, not other organizations.
	asViewer := testenv.Client(env, billingv1connect.NewBillingServiceClient, viewer.Token)
	_, err = asViewer.ListInvoices(ctx, connect.NewRequest(&billingv1.ListInvoicesRequest{OrganizationId: orgID.String()}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	asStranger := testenv.Client(env, billingv1connect.NewBillingServiceClient, stranger.Token)
	for _, call := range []func() error{
		func() error {
			_, err := asStranger.ListInvoices(ctx, connect.NewRequest(&billingv1.ListInvoicesRequest{OrganizationId: orgID.String()}))
			return err
		},
		func() error {
			_, err := asStranger.DownloadInvoice(ctx, connect.NewRequest(&billingv1.DownloadInvoiceRequest{
				OrganizationId: orgID.String(), Month: old.Format("2006-01"), Format: "pdf"}))
			return err
		},
		func() error {
			_, err := asStranger.GetUsageReport(ctx, connect.NewRequest(&billingv1.GetUsageReportRequest{OrganizationId: orgID.String()}))
			return err
		},
	} {
		err := call()
		require.Contains(t, []connect.Code{connect.CodePermissionDenied, connect.CodeNotFound}, connect.CodeOf(err))
	}
}

func TestUsageReportsShowOnlyTheOrganizationsOwnUsage(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	owner := env.NewUser(t, "owner@example.com")
	viewer := env.NewUser(t, "viewer@example.com")
	other := env.NewUser(t, "other@example.com")
	orgID := env.NewOrg(t, owner, "Acme")
	otherOrg := env.NewOrg(t, other, "Other")
	require.NoError(t, env.Store.AddMember(ctx, orgID, viewer.ID, store.RoleViewer))

	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	mine, theirs := uuid.New(), uuid.New()
	insertCharges(t, env, charge{orgID, mine, hour, 30}, charge{orgID, mine, hour.Add(-time.Hour), 30},
		charge{otherOrg, theirs, hour, 500})

	asViewer := testenv.Client(env, billingv1connect.NewBillingServiceClient, viewer.Token)
	rep, err := asViewer.GetUsageReport(ctx, connect.NewRequest(&billingv1.GetUsageReportRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Equal(t, "hour", rep.Msg.GetBucket())
	require.GreaterOrEqual(t, len(rep.Msg.GetPoints()), 24, "every hour of the last day, empty ones too")
	require.EqualValues(t, 60, rep.Msg.GetTotal())
	require.Equal(t, "USD", rep.Msg.GetCurrency())
	require.Len(t, rep.Msg.GetResources(), 1)
	require.Equal(t, mine.String(), rep.Msg.GetResources()[0].GetResourceId())

	// Another organization's app id shows nothing of it.
	rep, err = asViewer.GetUsageReport(ctx, connect.NewRequest(&billingv1.GetUsageReportRequest{OrganizationId: orgID.String(),
		AppId: theirs.String()}))
	require.NoError(t, err)
	require.Zero(t, rep.Msg.GetTotal())
	require.Empty(t, rep.Msg.GetResources())
	exp, err := asViewer.ExportUsage(ctx, connect.NewRequest(&billingv1.ExportUsageRequest{OrganizationId: orgID.String(),
		AppId: theirs.String()}))
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(exp.Msg.GetFile().GetContent())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1, "the header only")

	exp, err = asViewer.ExportUsage(ctx, connect.NewRequest(&billingv1.ExportUsageRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	rows, err = csv.NewReader(bytes.NewReader(exp.Msg.GetFile().GetContent())).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.Equal(t, hour.Add(-time.Hour).Format(time.RFC3339), rows[1][0])

	// Ranges are checked, naming the field.
	for _, req := range []*billingv1.GetUsageReportRequest{
		{OrganizationId: orgID.String(), From: timestamppb.New(hour), To: timestamppb.New(hour.Add(-time.Hour))},
		{OrganizationId: orgID.String(), From: timestamppb.New(hour.Add(-93 * 24 * time.Hour)), To: timestamppb.New(hour)},
	} {
		_, err := asViewer.GetUsageReport(ctx, connect.NewRequest(req))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		require.Contains(t, err.Error(), "from")
	}
	rep, err = asViewer.GetUsageReport(ctx, connect.NewRequest(&billingv1.GetUsageReportRequest{OrganizationId: orgID.String(),
		From: timestamppb.New(hour.Add(-30 * 24 * time.Hour)), To: timestamppb.New(hour.Add(time.Hour))}))
	require.NoError(t, err)
	require.Equal(t, "day", rep.Msg.GetBucket(), "daily beyond 7 days")
	require.EqualValues(t, 60, rep.Msg.GetTotal())

	// Analytics are for platform admins only.
	_, err = asViewer.GetAnalytics(ctx, connect.NewRequest(&billingv1.GetAnalyticsRequest{}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err))
	admin := env.Admin(t)
	asAdmin := testenv.Client(env, billingv1connect.NewBillingServiceClient, admin.Token)
	a, err := asAdmin.GetAnalytics(ctx, connect.NewRequest(&billingv1.GetAnalyticsRequest{}))
	require.NoError(t, err)
	var revenue int64
	for _, r := range a.Msg.GetRevenueByDay() {
		revenue += r.GetAmount()
	}
	require.EqualValues(t, 560, revenue)
	require.Len(t, a.Msg.GetTopOrganizations(), 2)
	require.Equal(t, "Other", a.Msg.GetTopOrganizations()[0].GetName())
	require.EqualValues(t, 500, a.Msg.GetTopOrganizations()[0].GetAmount())
	_, err = asAdmin.GetAnalytics(ctx, connect.NewRequest(&billingv1.GetAnalyticsRequest{
		From: timestamppb.New(hour.Add(-401 * 24 * time.Hour)), To: timestamppb.New(hour)}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "from")
}
