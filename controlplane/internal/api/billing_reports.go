package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/workload"
)

// BillingService's reports: usage per hour or day, usage export, monthly invoices and the
// platform admins' analytics. The rules live in package billing; these map requests and
// errors.

// GetUsageReport sums the organization's (or one of its apps') usage per bucket.
func (s *BillingService) GetUsageReport(ctx context.Context, req *connect.Request[billingv1.GetUsageReportRequest]) (*connect.Response[billingv1.GetUsageReportResponse], error) {
	r := reportRequest(req.Msg.GetOrganizationId(), req.Msg.GetAppId(), req.Msg.GetFrom(), req.Msg.GetTo())
	r.Bucket = req.Msg.GetBucket()
	rep, err := billing.UsageReport(ctx, s.opts.Store, r, time.Now())
	if err != nil {
		return nil, reportErr("usage", err)
	}
	out := &billingv1.GetUsageReportResponse{Total: rep.Total, Currency: rep.Currency, Bucket: rep.Bucket,
		From: timestamppb.New(rep.From), To: timestamppb.New(rep.To)}
	for _, p := range rep.Points {
		out.Points = append(out.Points, &billingv1.UsagePoint{Start: timestamppb.New(p.Start), Amount: p.Amount,
			UnitSeconds: p.UnitSeconds})
	}
	for _, u := range rep.Resources {
		out.Resources = append(out.Resources, &billingv1.ResourceUsage{ResourceType: u.ResourceType,
			ResourceId: u.ResourceID.String(), Name: u.Name, Amount: u.Amount, UnitSeconds: u.UnitSeconds})
	}
	return connect.NewResponse(out), nil
}

// ExportUsage returns the usage of a range as CSV, one row per resource and hour.
func (s *BillingService) ExportUsage(ctx context.Context, req *connect.Request[billingv1.ExportUsageRequest]) (*connect.Response[billingv1.ExportUsageResponse], error) {
	r := reportRequest(req.Msg.GetOrganizationId(), req.Msg.GetAppId(), req.Msg.GetFrom(), req.Msg.GetTo())
	doc, err := billing.ExportUsage(ctx, s.opts.Store, r, time.Now())
	if err != nil {
		return nil, reportErr("usage", err)
	}
	return connect.NewResponse(&billingv1.ExportUsageResponse{File: fileProto(doc)}), nil
}

// reportRequest reads the fields usage reports and exports share (validated as UUIDs by
// the request's rules).
func reportRequest(orgID, appID string, from, to *timestamppb.Timestamp) billing.ReportRequest {
	r := billing.ReportRequest{OrganizationID: uuid.MustParse(orgID)}
	if appID != "" {
		id := uuid.MustParse(appID)
		r.AppID = &id
	}
	r.From, r.To = optionalTime(from), optionalTime(to)
	return r
}

// optionalTime is ts as a time, or nil when the request left it out.
func optionalTime(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

// ListInvoices lists the organization's issued invoices, newest first, with the current
// month's draft (and last month's until it is issued).
func (s *BillingService) ListInvoices(ctx context.Context, req *connect.Request[billingv1.ListInvoicesRequest]) (*connect.Response[billingv1.ListInvoicesResponse], error) {
	iv, err := s.invoicer()
	if err != nil {
		return nil, err
	}
	list, err := iv.List(ctx, uuid.MustParse(req.Msg.GetOrganizationId()))
	if err != nil {
		return nil, storeErr("invoices", err)
	}
	out := &billingv1.ListInvoicesResponse{}
	for _, inv := range list {
		out.Invoices = append(out.Invoices, invoiceProto(inv))
	}
	return connect.NewResponse(out), nil
}

// GetInvoice returns one month's invoice with its lines: the issued one, or a draft.
func (s *BillingService) GetInvoice(ctx context.Context, req *connect.Request[billingv1.GetInvoiceRequest]) (*connect.Response[billingv1.GetInvoiceResponse], error) {
	inv, _, err := s.monthInvoice(ctx, req.Msg.GetOrganizationId(), req.Msg.GetMonth())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.GetInvoiceResponse{Invoice: invoiceProto(inv)}), nil
}

// DownloadInvoice renders one month's invoice as PDF or CSV.
func (s *BillingService) DownloadInvoice(ctx context.Context, req *connect.Request[billingv1.DownloadInvoiceRequest]) (*connect.Response[billingv1.DownloadInvoiceResponse], error) {
	inv, iv, err := s.monthInvoice(ctx, req.Msg.GetOrganizationId(), req.Msg.GetMonth())
	if err != nil {
		return nil, err
	}
	doc, err := iv.Render(inv, req.Msg.GetFormat())
	if errors.Is(err, billing.ErrInvalid) {
		return nil, invalid(workload.FieldErrors{{Field: "format", Reason: "must be pdf or csv"}})
	}
	if err != nil {
		return nil, storeErr("invoice", err)
	}
	return connect.NewResponse(&billingv1.DownloadInvoiceResponse{File: fileProto(doc)}), nil
}

func (s *BillingService) monthInvoice(ctx context.Context, orgID, month string) (billing.Invoice, *billing.Invoicer, error) {
	start, err := billing.ParseMonth(month)
	if err != nil {
		return billing.Invoice{}, nil, invalid(workload.FieldErrors{{Field: "month", Reason: "must be YYYY-MM"}})
	}
	iv, err := s.invoicer()
	if err != nil {
		return billing.Invoice{}, nil, err
	}
	inv, err := iv.Month(ctx, uuid.MustParse(orgID), start)
	if err != nil {
		return billing.Invoice{}, nil, storeErr("invoice", err)
	}
	return inv, iv, nil
}

// invoicer reads invoices on the request's clock. (Issuing is the server's hourly job.)
func (s *BillingService) invoicer() (*billing.Invoicer, error) {
	iv, err := billing.NewInvoicer(billing.InvoiceOptions{Store: s.opts.Store})
	if err != nil {
		return nil, storeErr("invoices", err)
	}
	return iv, nil
}

// GetAnalytics is the platform's revenue, top-ups, apps by status, cluster capacity and
// top spenders.
func (s *BillingService) GetAnalytics(ctx context.Context, req *connect.Request[billingv1.GetAnalyticsRequest]) (*connect.Response[billingv1.GetAnalyticsResponse], error) {
	a, err := billing.PlatformAnalytics(ctx, s.opts.Store, optionalTime(req.Msg.GetFrom()), optionalTime(req.Msg.GetTo()), time.Now())
	if err != nil {
		return nil, reportErr("analytics", err)
	}
	out := &billingv1.GetAnalyticsResponse{
		RevenueByDay: revenueProtos(a.RevenueByDay), RevenueByMonth: revenueProtos(a.RevenueByMonth),
		TopUps: revenueProtos(a.TopUps),
	}
	for _, c := range a.AppsByStatus {
		out.AppsByStatus = append(out.AppsByStatus, &billingv1.AppCount{Status: c.Status, Count: c.Count})
	}
	for _, c := range a.Clusters {
		out.Clusters = append(out.Clusters, &billingv1.ClusterCapacity{ClusterId: c.ClusterID.String(), Name: c.Name,
			CpuMillisAllocated: c.ReservedCPUMillis, CpuMillisAvailable: c.CPUMillis,
			MemoryBytesAllocated: c.ReservedMemoryMiB << 20, MemoryBytesAvailable: c.MemoryMiB << 20})
	}
	for _, o := range a.TopOrganizations {
		out.TopOrganizations = append(out.TopOrganizations, &billingv1.OrganizationSpend{
			OrganizationId: o.OrganizationID.String(), Name: o.Name, Currency: o.Currency, Amount: o.Amount})
	}
	return connect.NewResponse(out), nil
}

func revenueProtos(rs []store.Revenue) []*billingv1.Revenue {
	out := make([]*billingv1.Revenue, 0, len(rs))
	for _, r := range rs {
		out = append(out, &billingv1.Revenue{Start: timestamppb.New(r.Start), Currency: r.Currency, Amount: r.Amount})
	}
	return out
}

func invoiceProto(inv billing.Invoice) *billingv1.Invoice {
	out := &billingv1.Invoice{Number: inv.Number, Month: inv.Month(), PeriodStart: timestamppb.New(inv.PeriodStart),
		PeriodEnd: timestamppb.New(inv.PeriodEnd), Status: inv.Status, Currency: inv.Currency, Total: inv.Total,
		IssuedAt: ts(inv.IssuedAt), OrganizationName: inv.OrganizationName}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, &billingv1.InvoiceLine{ResourceType: l.ResourceType, ResourceId: l.ResourceID.String(),
			Description: l.Description, UnitSeconds: l.UnitSeconds, Amount: l.Amount})
	}
	return out
}

func fileProto(d billing.Document) *billingv1.File {
	return &billingv1.File{Filename: d.Filename, ContentType: d.ContentType, Content: d.Content}
}

// reportErr maps a report's error: a refused range names its field.
func reportErr(what string, err error) error {
	var fe *billing.FieldError
	if errors.As(err, &fe) {
		return invalid(workload.FieldErrors{{Field: fe.Field, Reason: fe.Reason}})
	}
	return storeErr(what, err)
}
