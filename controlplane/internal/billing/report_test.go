package billing_test

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// reportFixture: Acme's app "api" (plan web, 30/h) runs from t0-10h, a plan-less app
// deleted since runs 2 replicas at 10/h from t0-3h to t0-1h, and Other's app at 50/h from
// t0-5h; now is t0+2h, so metered up to t0+1h.
type reportFixture struct {
	org, other   uuid.UUID
	api, gone, c billing.Resource
	cluster      store.Cluster
}

func (b *bundle) reportFixture(t *testing.T) reportFixture {
	t.Helper()
	acme, err := b.st.InsertOrganization(b.ctx, "Acme", "acme")
	require.NoError(t, err)
	other, err := b.st.InsertOrganization(b.ctx, "Other", "other")
	require.NoError(t, err)
	f := reportFixture{org: acme.ID, other: other.ID}
	web := b.plan(t, "web", 30)
	f.cluster, err = b.st.CreateCluster(b.ctx, store.Cluster{ID: uuid.New(), Name: "shared", GossipKeySealed: "x"})
	require.NoError(t, err)
	newApp := func(org uuid.UUID, name string, replicas int32) billing.Resource {
		r := app(org, &web)
		_, err := b.st.InsertApp(b.ctx, store.App{ID: r.ID, OrganizationID: org, Name: name, PlanID: web.ID,
			ClusterID: f.cluster.ID, Spec: []byte{}, Replicas: replicas})
		require.NoError(t, err)
		return r
	}
	f.api = newApp(f.org, "api", 1)
	newApp(f.org, "idle", 0)
	f.gone = app(f.org, nil)
	f.c = newApp(f.other, "shop", 1)
	f.c.PlanID = nil // priced by its run: 50/h

	b.setRunning(t, f.api, 1, 30, t0.Add(-10*time.Hour))
	b.setRunning(t, f.gone, 2, 10, t0.Add(-3*time.Hour))
	b.setRunning(t, f.gone, 0, 0, t0.Add(-time.Hour))
	b.setRunning(t, f.c, 1, 50, t0.Add(-5*time.Hour))
	b.now = t0.Add(2 * time.Hour)
	_, err = b.meter.Run(b.ctx)
	require.NoError(t, err)
	return f
}

func at(t time.Time) *time.Time { return &t }

func TestUsageReportsSumPerBucketAndResource(t *testing.T) {
	b := setup(t)
	f := b.reportFixture(t)

	t.Run("hourly buckets cover the range, empty ones as zeros", func(t *testing.T) {
		rep, err := billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org,
			From: at(t0.Add(-12*time.Hour + 17*time.Minute)), To: at(t0.Add(2 * time.Hour))}, b.now)
		require.NoError(t, err)
		require.Equal(t, billing.BucketHour, rep.Bucket, "hourly up to 7 days")
		require.True(t, rep.From.Equal(t0.Add(-12*time.Hour)), "from is rounded down to its bucket")
		require.Len(t, rep.Points, 14)
		var amounts []int64
		for i, p := range rep.Points {
			require.True(t, p.Start.Equal(t0.Add(time.Duration(i-12)*time.Hour)))
			amounts = append(amounts, p.Amount)
		}
		require.Equal(t, []int64{0, 0, 30, 30, 30, 30, 30, 30, 30, 50, 50, 30, 30, 0}, amounts)
		require.EqualValues(t, 11*30+40, rep.Total)
		require.Equal(t, "USD", rep.Currency)
		require.Len(t, rep.Resources, 2)
		byID := map[uuid.UUID]store.ResourceUsage{}
		for _, r := range rep.Resources {
			byID[r.ResourceID] = r
		}
		require.Equal(t, "api", byID[f.api.ID].Name)
		require.EqualValues(t, 330, byID[f.api.ID].Amount)
		require.EqualValues(t, 11*3600, byID[f.api.ID].UnitSeconds)
		require.Empty(t, byID[f.gone.ID].Name, "a deleted app has no name")
		require.EqualValues(t, 40, byID[f.gone.ID].Amount)
	})

	t.Run("daily buckets are UTC days", func(t *testing.T) {
		rep, err := billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org,
			From: at(t0.Add(-48 * time.Hour)), To: at(b.now), Bucket: billing.BucketDay}, b.now)
		require.NoError(t, err)
		require.Len(t, rep.Points, 3)
		require.Equal(t, []int64{0, 10*30 + 40, 30}, []int64{rep.Points[0].Amount, rep.Points[1].Amount, rep.Points[2].Amount})
		require.True(t, rep.Points[2].Start.Equal(t0))
	})

	t.Run("the default is the last 24 hours, hourly; beyond 7 days, daily", func(t *testing.T) {
		rep, err := billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org}, b.now)
		require.NoError(t, err)
		require.Equal(t, billing.BucketHour, rep.Bucket)
		require.Len(t, rep.Points, 24)
		require.EqualValues(t, 370, rep.Total)
		rep, err = billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org,
			From: at(b.now.Add(-30 * 24 * time.Hour))}, b.now)
		require.NoError(t, err)
		require.Equal(t, billing.BucketDay, rep.Bucket)
		require.Len(t, rep.Points, 31)
	})

	t.Run("an app filter keeps that app; another organization's app shows nothing", func(t *testing.T) {
		rep, err := billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org, AppID: &f.api.ID}, b.now)
		require.NoError(t, err)
		require.EqualValues(t, 330, rep.Total)
		require.Len(t, rep.Resources, 1)
		rep, err = billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org, AppID: &f.c.ID}, b.now)
		require.NoError(t, err)
		require.Zero(t, rep.Total)
		require.Empty(t, rep.Resources)
		for _, p := range rep.Points {
			require.Zero(t, p.Amount)
		}
	})

	t.Run("bad ranges are refused naming the field", func(t *testing.T) {
		for _, c := range []struct {
			req   billing.ReportRequest
			field string
		}{
			{billing.ReportRequest{From: at(b.now), To: at(b.now)}, "from"},
			{billing.ReportRequest{From: at(b.now.Add(time.Hour))}, "from"},
			{billing.ReportRequest{From: at(b.now.Add(-93 * 24 * time.Hour))}, "from"},
			{billing.ReportRequest{Bucket: "week"}, "bucket"},
		} {
			c.req.OrganizationID = f.org
			_, err := billing.UsageReport(b.ctx, b.st, c.req, b.now)
			require.ErrorIs(t, err, billing.ErrInvalid)
			var fe *billing.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, c.field, fe.Field)
		}
		_, err := billing.UsageReport(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org,
			From: at(b.now.Add(-92 * 24 * time.Hour))}, b.now)
		require.NoError(t, err, "92 days are allowed")
	})

	t.Run("the export has a row per resource and hour", func(t *testing.T) {
		doc, err := billing.ExportUsage(b.ctx, b.st, billing.ReportRequest{OrganizationID: f.org}, b.now)
		require.NoError(t, err)
		require.Equal(t, "text/csv; charset=utf-8", doc.ContentType)
		rows, err := csv.NewReader(bytes.NewReader(doc.Content)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"period_start", "resource_type", "resource_id", "name", "unit_seconds", "unit_price",
			"amount", "currency"}, rows[0])
		require.Len(t, rows, 1+11+2)
		require.Equal(t, []string{t0.Add(-10 * time.Hour).Format(time.RFC3339), "app", f.api.ID.String(), "api", "3600",
			"0.30", "0.30", "USD"}, rows[1])
		for _, r := range rows[1:] {
			require.NotEqual(t, f.c.ID.String(), r[2])
		}
	})
}

func TestAnalyticsAddUpThePlatform(t *testing.T) {
	b := setup(t)
	f := b.reportFixture(t)
	_, err := b.st.Pool().Exec(b.ctx, `UPDATE clusters SET state = 'active' WHERE id = $1`, f.cluster.ID)
	require.NoError(t, err)
	_, err = b.st.Pool().Exec(b.ctx, `
		INSERT INTO top_ups (organization_id, provider, external_id, amount, currency, status, created_at, completed_at)
		VALUES ($1, 'test', 'a', 5000, 'USD', 'paid', $2, $2), ($1, 'test', 'b', 2500, 'USD', 'paid', $2, $2),
			($1, 'test', 'c', 9900, 'USD', 'open', $2, NULL), ($1, 'test', 'd', 7000, 'USD', 'paid', $3, $3),
			($4, 'test', 'e', 100, 'EUR', 'paid', $2, $2)`,
		f.org, t0.Add(-time.Hour), t0.Add(-60*24*time.Hour), f.other)
	require.NoError(t, err)

	a, err := billing.PlatformAnalytics(b.ctx, b.st, at(t0.Add(-3*24*time.Hour)), nil, b.now)
	require.NoError(t, err)
	require.Equal(t, []store.Revenue{
		{Start: t0.Add(-24 * time.Hour), Currency: "USD", Amount: 10*30 + 40 + 5*50},
		{Start: t0, Currency: "USD", Amount: 30 + 50},
	}, utc(a.RevenueByDay))
	require.Equal(t, []store.Revenue{{Start: jan, Currency: "USD", Amount: 590 + 80}}, utc(a.RevenueByMonth))
	require.Len(t, a.TopUps, 2)
	require.Equal(t, "EUR", a.TopUps[0].Currency)
	require.EqualValues(t, 100, a.TopUps[0].Amount)
	require.Equal(t, "USD", a.TopUps[1].Currency)
	require.EqualValues(t, 7500, a.TopUps[1].Amount, "paid in range only")
	require.Equal(t, []store.OrganizationSpend{
		{OrganizationID: f.org, Name: "Acme", Currency: "USD", Amount: 370},
		{OrganizationID: f.other, Name: "Other", Currency: "USD", Amount: 300},
	}, a.TopOrganizations)
	require.Equal(t, []store.AppStatusCount{{Status: "degraded", Count: 2}, {Status: "stopped", Count: 1}}, a.AppsByStatus,
		"no replica reported running")
	require.Len(t, a.Clusters, 1)
	require.EqualValues(t, 2*500, a.Clusters[0].ReservedCPUMillis, "replicas × plan size")
	require.EqualValues(t, 2*512, a.Clusters[0].ReservedMemoryMiB)
	require.Zero(t, a.Clusters[0].CPUMillis, "no ready node")

	_, err = billing.PlatformAnalytics(b.ctx, b.st, at(b.now.Add(-401*24*time.Hour)), nil, b.now)
	require.ErrorIs(t, err, billing.ErrInvalid)
}

func utc(rs []store.Revenue) []store.Revenue {
	for i := range rs {
		rs[i].Start = rs[i].Start.UTC()
	}
	return rs
}
