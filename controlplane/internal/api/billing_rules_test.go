package api_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/testenv"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
)

// balanceFixture is an organization with a running two-replica app, a platform admin's and
// the owner's billing clients.
type balanceFixture struct {
	*appFixture
	asAdmin, asOwner billingv1connect.BillingServiceClient
	app              *appv1.App
}

func setupBalance(t *testing.T, grace time.Duration) *balanceFixture {
	t.Helper()
	f := setupApps(t, testenv.WithMail(), testenv.WithConfig(func(c *config.Config) {
		c.LowBalanceThreshold, c.BillingGracePeriod = 1000, grace
	}))
	b := &balanceFixture{appFixture: f,
		asAdmin: testenv.Client(f.env, billingv1connect.NewBillingServiceClient, f.adminUser.Token),
		asOwner: testenv.Client(f.env, billingv1connect.NewBillingServiceClient, f.userToken)}
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	b.app = created.Msg.GetApp()
	require.EqualValues(t, 2, f.apply(t).GetReplicas())
	f.waitDeployment(t, created.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	f.report(t, b.app.GetId(), created.Msg.GetDeployment().GetId(), "", "", 2)
	f.waitDeployment(t, created.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	return b
}

func (b *balanceFixture) wallet(t *testing.T) *billingv1.Wallet {
	t.Helper()
	w, err := b.asOwner.GetWallet(b.ctx, connect.NewRequest(&billingv1.GetWalletRequest{OrganizationId: b.orgID.String()}))
	require.NoError(t, err)
	return w.Msg.GetWallet()
}

func (b *balanceFixture) waitState(t *testing.T, state string) *billingv1.Wallet {
	t.Helper()
	var w *billingv1.Wallet
	testenv.WaitFor(t, 15*time.Second, "wallet state "+state, func() bool {
		w = b.wallet(t)
		return w.GetState() == state
	})
	return w
}

func (b *balanceFixture) credit(t *testing.T, amount int64) {
	t.Helper()
	_, err := b.asAdmin.CreditWallet(b.ctx, connect.NewRequest(&billingv1.CreditWalletRequest{
		OrganizationId: b.orgID.String(), Amount: amount, Currency: "USD", Reason: "test money"}))
	require.NoError(t, err)
}

func (b *balanceFixture) adjust(t *testing.T, amount int64) {
	t.Helper()
	_, err := b.asAdmin.AdjustWallet(b.ctx, connect.NewRequest(&billingv1.AdjustWalletRequest{
		OrganizationId: b.orgID.String(), Amount: amount, Reason: "test usage"}))
	require.NoError(t, err)
}

// scaledTo waits for the platform's deployment of the app to kind, checks the manager is
// told to run replicas, and reports them running.
func (b *balanceFixture) scaledTo(t *testing.T, kind appv1.DeploymentKind, replicas int32) {
	t.Helper()
	apply := b.apply(t)
	require.EqualValues(t, replicas, apply.GetReplicas())
	b.waitDeployment(t, apply.GetDeploymentId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	b.report(t, b.app.GetId(), apply.GetDeploymentId(), "", "", int(replicas))
	dep := b.waitDeployment(t, apply.GetDeploymentId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	require.Equal(t, kind, dep.GetKind())
}

func (b *balanceFixture) appStatus(t *testing.T) appv1.AppStatus {
	t.Helper()
	got, err := b.apps.GetApp(b.ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: b.orgID.String(), AppId: b.app.GetId()}))
	require.NoError(t, err)
	return got.Msg.GetApp().GetStatus()
}

func (b *balanceFixture) openRunQuantity(t *testing.T) int32 {
	t.Helper()
	runs, err := b.env.Store.BillableRuns(b.ctx, "app", uuid.MustParse(b.app.GetId()))
	require.NoError(t, err)
	for _, r := range runs {
		if r.EndedAt == nil {
			return r.Quantity
		}
	}
	return 0
}

func TestARunOutBalanceWarnsThenSuspendsAppsAndATopUpResumesThem(t *testing.T) {
	b := setupBalance(t, 2*time.Second)
	const owner = "dev@example.com"

	b.credit(t, 1500)
	require.Equal(t, "ok", b.wallet(t).GetState())
	require.EqualValues(t, 1000, b.wallet(t).GetLowBalanceThreshold(), "the platform's threshold")

	// Falling to the threshold warns once, by activity and mail.
	b.adjust(t, -600)
	b.waitState(t, "low")
	b.env.Mail.WaitFor(t, owner, "Low balance for Acme")
	b.adjust(t, -100)

	// Negative: a grace period, then the apps are suspended (scaled to 0, billing stops) and
	// nobody can start them.
	b.adjust(t, -1000)
	b.env.Mail.WaitFor(t, owner, "Balance negative")
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_SUSPEND, 0)
	w := b.waitState(t, "suspended")
	require.Equal(t, "billing", w.GetSuspendedBy())
	require.EqualValues(t, -200, w.GetBalance())
	b.env.Mail.WaitFor(t, owner, "Apps suspended for Acme")
	require.Equal(t, appv1.AppStatus_APP_STATUS_SUSPENDED, b.appStatus(t))
	require.Zero(t, b.openRunQuantity(t), "a suspended app is not billed")
	_, err := b.apps.ScaleApp(b.ctx, connect.NewRequest(&appv1.ScaleAppRequest{OrganizationId: b.orgID.String(),
		AppId: b.app.GetId(), Replicas: 3}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "suspended")
	_, err = b.apps.CreateApp(b.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: b.orgID.String(),
		Name: "api", PlanId: b.plan.GetId(), Spec: b.spec()}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))

	// A top-up that makes the balance positive resumes the apps as they were.
	b.credit(t, 1000)
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_RESUME, 2)
	w = b.waitState(t, "low")
	require.EqualValues(t, 800, w.GetBalance())
	require.Empty(t, w.GetSuspendedBy())
	require.Equal(t, appv1.AppStatus_APP_STATUS_RUNNING, b.appStatus(t))
	require.EqualValues(t, 2, b.openRunQuantity(t), "billed again at its two replicas")

	// Back over the threshold and under again: a second warning. Each mail went out once.
	b.credit(t, 5000)
	b.waitState(t, "ok")
	b.adjust(t, -5000)
	b.waitState(t, "low")
	testenv.WaitFor(t, 15*time.Second, "the second low-balance mail", func() bool { return b.env.Mail.Count(t, owner) == 4 })
}

func TestAdminsSuspendAndResumeAnOrganizationByHand(t *testing.T) {
	b := setupBalance(t, time.Hour)
	b.credit(t, 5000)
	org := b.orgID.String()

	_, err := b.asAdmin.ResumeOrganization(b.ctx, connect.NewRequest(&billingv1.ResumeOrganizationRequest{OrganizationId: org, Reason: "nothing to resume"}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	_, err = b.asAdmin.SuspendOrganization(b.ctx, connect.NewRequest(&billingv1.SuspendOrganizationRequest{OrganizationId: org, Reason: " "}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "reason")
	_, err = b.asOwner.SuspendOrganization(b.ctx, connect.NewRequest(&billingv1.SuspendOrganizationRequest{OrganizationId: org, Reason: "abuse report"}))
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "only platform admins suspend")

	s, err := b.asAdmin.SuspendOrganization(b.ctx, connect.NewRequest(&billingv1.SuspendOrganizationRequest{OrganizationId: org, Reason: "abuse report"}))
	require.NoError(t, err)
	require.Equal(t, "suspended", s.Msg.GetWallet().GetState())
	require.Equal(t, "admin", s.Msg.GetWallet().GetSuspendedBy())
	require.Equal(t, "abuse report", s.Msg.GetWallet().GetSuspendReason())
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_SUSPEND, 0)
	told := b.env.Mail.WaitFor(t, "dev@example.com", "Apps suspended for Acme")
	require.Contains(t, told.Text, "abuse report", "the organization's owner is told why")
	_, err = b.asAdmin.SuspendOrganization(b.ctx, connect.NewRequest(&billingv1.SuspendOrganizationRequest{OrganizationId: org, Reason: "again"}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))

	// Money does not end an admin's suspension. (Setting the threshold checks the balance
	// rules at once, so this reads their outcome.)
	b.credit(t, 5000)
	th := int64(100)
	set, err := b.asOwner.SetLowBalanceThreshold(b.ctx, connect.NewRequest(&billingv1.SetLowBalanceThresholdRequest{OrganizationId: org, Amount: &th}))
	require.NoError(t, err)
	require.Equal(t, "suspended", set.Msg.GetWallet().GetState())
	require.EqualValues(t, 100, set.Msg.GetWallet().GetLowBalanceThreshold())

	// Going negative while suspended starts no grace period warning: the apps are stopped
	// already.
	b.adjust(t, -20000)
	set, err = b.asOwner.SetLowBalanceThreshold(b.ctx, connect.NewRequest(&billingv1.SetLowBalanceThresholdRequest{OrganizationId: org, Amount: &th}))
	require.NoError(t, err)
	require.Equal(t, "suspended", set.Msg.GetWallet().GetState())
	var warned int
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx, `SELECT count(*) FROM activity_events
		WHERE organization_id = $1 AND event_type = 'wallet.grace_started'`, b.orgID).Scan(&warned))
	require.Zero(t, warned)
	b.credit(t, 20000)

	listed, err := b.asAdmin.ListWallets(b.ctx, connect.NewRequest(&billingv1.ListWalletsRequest{State: "suspended"}))
	require.NoError(t, err)
	require.Len(t, listed.Msg.GetWallets(), 1)
	require.Equal(t, "Acme", listed.Msg.GetWallets()[0].GetOrganizationName())
	listed, err = b.asAdmin.ListWallets(b.ctx, connect.NewRequest(&billingv1.ListWalletsRequest{Query: "nobody"}))
	require.NoError(t, err)
	require.Empty(t, listed.Msg.GetWallets())

	r, err := b.asAdmin.ResumeOrganization(b.ctx, connect.NewRequest(&billingv1.ResumeOrganizationRequest{OrganizationId: org, Reason: "resolved"}))
	require.NoError(t, err)
	require.Equal(t, "ok", r.Msg.GetWallet().GetState())
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_RESUME, 2)
	require.Equal(t, appv1.AppStatus_APP_STATUS_RUNNING, b.appStatus(t))

	// Resumed with a negative balance: the apps run, in a grace period of their own from now,
	// and the organization is warned as when a balance first goes negative.
	_, err = b.asAdmin.SuspendOrganization(b.ctx, connect.NewRequest(&billingv1.SuspendOrganizationRequest{OrganizationId: org, Reason: "second report"}))
	require.NoError(t, err)
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_SUSPEND, 0)
	b.adjust(t, -30000)
	r, err = b.asAdmin.ResumeOrganization(b.ctx, connect.NewRequest(&billingv1.ResumeOrganizationRequest{OrganizationId: org, Reason: "resolved again"}))
	require.NoError(t, err)
	require.Equal(t, "grace", r.Msg.GetWallet().GetState())
	ends := r.Msg.GetWallet().GetGraceEndsAt().AsTime()
	require.WithinDuration(t, time.Now().Add(time.Hour), ends, time.Minute, "the grace period starts at the resume")
	b.scaledTo(t, appv1.DeploymentKind_DEPLOYMENT_KIND_RESUME, 2)
	b.env.Mail.WaitFor(t, "dev@example.com", "Balance negative: apps will be suspended for Acme")
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx, `SELECT count(*) FROM activity_events
		WHERE organization_id = $1 AND event_type = 'wallet.grace_started'`, b.orgID).Scan(&warned))
	require.Equal(t, 1, warned)
}
