package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/gen/go/skypanel/app/v1/appv1connect"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
	domainv1 "skypanel/shared/gen/go/skypanel/domain/v1"
	"skypanel/shared/gen/go/skypanel/domain/v1/domainv1connect"
	organizationv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
	planv1 "skypanel/shared/gen/go/skypanel/plan/v1"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
	"skypanel/shared/workload"
)

// appFixture is a swarm with one manager (2 CPUs, 4 GiB), a plan, and a customer with an
// organization.
type appFixture struct {
	*swarmFixture
	plan      *planv1.Plan
	apps      appv1connect.AppServiceClient
	orgID     uuid.UUID
	userToken string
}

func setupApps(t *testing.T, options ...testenv.Option) *appFixture {
	t.Helper()
	f := setupSwarm(t, options...)
	plans := testenv.Client(f.env, planv1connect.NewPlanServiceClient, f.adminUser.Token)
	plan, err := plans.CreatePlan(f.ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "small", CpuMillis: 500, MemoryMib: 256, PricePerHour: 12, Currency: "USD", MaxReplicas: 3, MaxApps: 5}}))
	require.NoError(t, err)
	user := f.env.NewUser(t, "dev@example.com")
	orgID := f.env.NewOrg(t, user, "Acme")
	return &appFixture{swarmFixture: f, plan: plan.Msg.GetPlan(),
		apps: testenv.Client(f.env, appv1connect.NewAppServiceClient, user.Token), orgID: orgID, userToken: user.Token}
}

func (f *appFixture) spec() *appv1.AppSpec {
	return &appv1.AppSpec{Image: "whoami:1", Port: 8080, Replicas: 2, Env: []*appv1.EnvVar{
		{Name: "GREETING", Value: "hello"}, {Name: "API_KEY", Value: "s3cret", Secret: true}}}
}

// report sends the manager's view of the app's service: its spec's deployment (and the one
// before), the update state, and running tasks of the current spec.
func (f *appFixture) report(t *testing.T, appID, deploymentID, previous, updateState string, running int) {
	t.Helper()
	svc := &agentv1.ServiceStatus{ServiceName: workload.ServiceName(appID), DeploymentId: deploymentID,
		PreviousDeploymentId: previous, UpdateState: updateState, DesiredReplicas: int32(running)}
	for i := range running {
		svc.Tasks = append(svc.Tasks, &agentv1.TaskStatus{Id: uuid.NewString(), Slot: int32(i + 1), SwarmNodeId: "swarm-mgr",
			State: "running", DesiredState: "running", DeploymentId: deploymentID})
	}
	_, err := f.manager.agent.Client.ReportWorkloads(f.ctx, connect.NewRequest(&agentv1.ReportWorkloadsRequest{
		SampledAt: timestamppb.Now(), Services: []*agentv1.ServiceStatus{svc}, Complete: true}))
	require.NoError(t, err)
}

// reportRolledBack reports what Swarm shows after rolling back from the failed deployment:
// the earlier spec again, and the failed deployment's tasks shut down in the history.
func (f *appFixture) reportRolledBack(t *testing.T, appID, current, failed string) {
	t.Helper()
	svc := &agentv1.ServiceStatus{ServiceName: workload.ServiceName(appID), DeploymentId: current,
		UpdateState: "rollback_completed", UpdateMessage: "rollback completed", DesiredReplicas: 2}
	for i := range 2 {
		svc.Tasks = append(svc.Tasks,
			&agentv1.TaskStatus{Id: uuid.NewString(), Slot: int32(i + 1), State: "running", DesiredState: "running", DeploymentId: current},
			&agentv1.TaskStatus{Id: uuid.NewString(), Slot: int32(i + 1), State: "shutdown", DesiredState: "shutdown", DeploymentId: failed})
	}
	_, err := f.manager.agent.Client.ReportWorkloads(f.ctx, connect.NewRequest(&agentv1.ReportWorkloadsRequest{
		SampledAt: timestamppb.Now(), Services: []*agentv1.ServiceStatus{svc}, Complete: true}))
	require.NoError(t, err)
}

func (f *appFixture) waitDeployment(t *testing.T, id string, want appv1.DeploymentState) *appv1.Deployment {
	t.Helper()
	var got *appv1.Deployment
	testenv.WaitFor(t, 15*time.Second, "deployment "+want.String(), func() bool {
		r, err := f.apps.GetDeployment(f.ctx, connect.NewRequest(&appv1.GetDeploymentRequest{
			OrganizationId: f.orgID.String(), DeploymentId: id}))
		require.NoError(t, err)
		got = r.Msg.GetDeployment()
		return got.GetState() == want
	})
	return got
}

// apply walks one deployment through the manager: network, then service spec.
func (f *appFixture) apply(t *testing.T) *agentv1.ServiceApply {
	t.Helper()
	return f.applyWithOutput(t, `{"changed": true}`)
}

// applyWithOutput is apply with the manager acknowledging the service spec with output.
func (f *appFixture) applyWithOutput(t *testing.T, output string) *agentv1.ServiceApply {
	t.Helper()
	cmd := f.manager.next()
	if ne := cmd.GetNetworkEnsure(); ne != nil {
		f.manager.ack(cmd.GetSeq(), `{}`)
		cmd = f.manager.next()
	}
	apply := cmd.GetServiceApply()
	require.NotNil(t, apply, "want service_apply, got %v", cmd)
	f.manager.ack(cmd.GetSeq(), output)
	return apply
}

func TestDeployingAnAppGoesThroughTheManagerAgent(t *testing.T) {
	f := setupApps(t)
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	app, dep := created.Msg.GetApp(), created.Msg.GetDeployment()
	require.Equal(t, "web-acme.apps.localhost", app.GetDefaultHostname())
	require.Equal(t, appv1.DeploymentState_DEPLOYMENT_STATE_PENDING, dep.GetState())

	// The organization's network first, then the service with the plan's limits and the
	// secret in plaintext (only the agent sees it).
	ne := f.manager.next()
	require.Equal(t, workload.NetworkName(f.orgID.String()), ne.GetNetworkEnsure().GetName())
	f.manager.ack(ne.GetSeq(), `{}`)
	cmd := f.manager.next()
	apply := cmd.GetServiceApply()
	require.Equal(t, workload.ServiceName(app.GetId()), apply.GetServiceName())
	require.Equal(t, dep.GetId(), apply.GetDeploymentId())
	require.Equal(t, "whoami:1", apply.GetImage())
	require.EqualValues(t, 2, apply.GetReplicas())
	require.EqualValues(t, 500, apply.GetCpuMillis())
	require.EqualValues(t, 256<<20, apply.GetMemoryBytes())
	require.ElementsMatch(t, []string{"GREETING=hello", "API_KEY=s3cret", "PORT=8080"}, apply.GetEnv())
	require.Equal(t, workload.NetworkName(f.orgID.String()), apply.GetNetwork())
	require.True(t, apply.GetRollbackOnFailure())
	f.manager.ack(cmd.GetSeq(), `{"changed": true}`)

	f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	f.report(t, app.GetId(), dep.GetId(), "", "", 1)
	time.Sleep(time.Second)
	got, err := f.apps.GetDeployment(f.ctx, connect.NewRequest(&appv1.GetDeploymentRequest{OrganizationId: f.orgID.String(), DeploymentId: dep.GetId()}))
	require.NoError(t, err)
	require.Equal(t, appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT, got.Msg.GetDeployment().GetState(), "1 of 2 replicas is not done")
	f.report(t, app.GetId(), dep.GetId(), "", "", 2)
	done := f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	var states []appv1.DeploymentState
	for _, e := range done.GetEvents() {
		states = append(states, e.GetState())
	}
	require.Equal(t, []appv1.DeploymentState{appv1.DeploymentState_DEPLOYMENT_STATE_PENDING, appv1.DeploymentState_DEPLOYMENT_STATE_PREPARING,
		appv1.DeploymentState_DEPLOYMENT_STATE_APPLYING, appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT,
		appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED}, states)

	// Billing: the app's two replicas run from now, at the plan's price.
	runs, err := f.env.Store.BillableRuns(f.ctx, "app", uuid.MustParse(app.GetId()))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.EqualValues(t, 2, runs[0].Quantity)
	require.EqualValues(t, 12, runs[0].UnitPrice)
	require.Nil(t, runs[0].EndedAt)
	runningSince := runs[0].StartedAt

	// The app runs release 1; its secret is never returned.
	got2, err := f.apps.GetApp(f.ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	a := got2.Msg.GetApp()
	require.Equal(t, appv1.AppStatus_APP_STATUS_RUNNING, a.GetStatus())
	require.EqualValues(t, 1, a.GetCurrentRelease())
	require.EqualValues(t, 2, a.GetRunningReplicas())
	for _, e := range a.GetSpec().GetEnv() {
		if e.GetName() == "API_KEY" {
			require.Empty(t, e.GetValue())
			require.True(t, e.GetHasValue())
		}
	}

	// A new release that fails its health check: Swarm rolls back by itself, and the app goes
	// back to describing release 1. The secret is kept without being sent again.
	spec := f.spec()
	spec.Image = "whoami:broken"
	spec.Env[1] = &appv1.EnvVar{Name: "API_KEY", Secret: true, Keep: true}
	upd, err := f.apps.UpdateApp(f.ctx, connect.NewRequest(&appv1.UpdateAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId(), Spec: spec}))
	require.NoError(t, err)
	apply = f.apply(t)
	require.Contains(t, apply.GetEnv(), "API_KEY=s3cret")
	f.waitDeployment(t, upd.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	// A report from before the new spec (the first deployment, no rollback) changes nothing;
	// then Swarm's: the spec is the first deployment's again, the failed one is previous.
	f.report(t, app.GetId(), dep.GetId(), "", "completed", 2)
	f.reportRolledBack(t, app.GetId(), dep.GetId(), upd.Msg.GetDeployment().GetId())
	rolled := f.waitDeployment(t, upd.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
	require.True(t, rolled.GetAutomaticRollback())
	got2, err = f.apps.GetApp(f.ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	require.Equal(t, "whoami:1", got2.Msg.GetApp().GetSpec().GetImage())
	require.EqualValues(t, 1, got2.Msg.GetApp().GetCurrentRelease())

	// A manual rollback to release 1 runs it as it was, as release 1.
	rels, err := f.apps.ListReleases(f.ctx, connect.NewRequest(&appv1.ListReleasesRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	require.Len(t, rels.Msg.GetReleases(), 2)
	first := rels.Msg.GetReleases()[1]
	rb, err := f.apps.Rollback(f.ctx, connect.NewRequest(&appv1.RollbackRequest{OrganizationId: f.orgID.String(), AppId: app.GetId(), ReleaseId: first.GetId()}))
	require.NoError(t, err)
	require.EqualValues(t, 1, rb.Msg.GetDeployment().GetReleaseVersion())
	apply = f.apply(t)
	require.Equal(t, "whoami:1", apply.GetImage())
	f.waitDeployment(t, rb.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	// The stale report of the earlier automatic rollback does not fail the manual one.
	f.reportRolledBack(t, app.GetId(), dep.GetId(), upd.Msg.GetDeployment().GetId())
	f.report(t, app.GetId(), rb.Msg.GetDeployment().GetId(), dep.GetId(), "completed", 2)
	f.waitDeployment(t, rb.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)

	// Scaling past the plan is bad input; scaling within it deploys the same release.
	_, err = f.apps.ScaleApp(f.ctx, connect.NewRequest(&appv1.ScaleAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId(), Replicas: 4}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "replicas: at most 3")
	sc, err := f.apps.ScaleApp(f.ctx, connect.NewRequest(&appv1.ScaleAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId(), Replicas: 3}))
	require.NoError(t, err)
	apply = f.apply(t)
	require.EqualValues(t, 3, apply.GetReplicas())
	require.Equal(t, appv1.DeploymentKind_DEPLOYMENT_KIND_SCALE, sc.Msg.GetDeployment().GetKind())

	// The organization cannot go while it has apps.
	orgs := testenv.Client(f.env, organizationv1connect.NewOrganizationServiceClient, f.userToken)
	_, err = orgs.DeleteOrganization(f.ctx, connect.NewRequest(&organizationv1.DeleteOrganizationRequest{
		OrganizationId: f.orgID.String(), ConfirmSlug: "acme"}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "still has 1 apps")

	// Deleting removes the service, then the app. Runs are counted in whole seconds, and one
	// that ends in the second it began is dropped as never billed: let the app run into the
	// next second first, however fast the steps above went.
	for !time.Now().Truncate(time.Second).After(runningSince) {
		time.Sleep(20 * time.Millisecond)
	}
	_, err = f.apps.DeleteApp(f.ctx, connect.NewRequest(&appv1.DeleteAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	cmd = f.manager.next()
	require.Equal(t, workload.ServiceName(app.GetId()), cmd.GetServiceRemove().GetServiceName())
	f.manager.ack(cmd.GetSeq(), `{}`)
	testenv.WaitFor(t, 15*time.Second, "the app to be gone", func() bool {
		_, err := f.apps.GetApp(f.ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
		return connect.CodeOf(err) == connect.CodeNotFound
	})
	// Billing kept the history and stopped. Only succeeded deployments count: the automatic
	// rollback changed nothing, and the scale to 3 never finished (the delete superseded it).
	runs, err = f.env.Store.BillableRuns(f.ctx, "app", uuid.MustParse(app.GetId()))
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	for _, r := range runs {
		require.NotNil(t, r.EndedAt, "no run stays open after the app is deleted")
	}
	require.EqualValues(t, 2, runs[len(runs)-1].Quantity)
}

func TestTheSchedulerRefusesWhatDoesNotFit(t *testing.T) {
	f := setupApps(t)
	plans := testenv.Client(f.env, planv1connect.NewPlanServiceClient, f.adminUser.Token)
	big, err := plans.CreatePlan(f.ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "big", CpuMillis: 1500, MemoryMib: 1024, PricePerHour: 100, Currency: "USD", MaxReplicas: 10, MaxApps: 1}}))
	require.NoError(t, err)
	spec := f.spec()
	spec.Replicas = 2 // 3 CPUs on a 2-CPU cluster
	_, err = f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: f.orgID.String(), Name: "api",
		PlanId: big.Msg.GetPlan().GetId(), Spec: spec}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "no cluster has room for 3 CPU and 2048 MiB")

	spec.Replicas = 1
	_, err = f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: f.orgID.String(), Name: "api",
		PlanId: big.Msg.GetPlan().GetId(), Spec: spec}))
	require.NoError(t, err)
	_, err = f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: f.orgID.String(), Name: "api2",
		PlanId: big.Msg.GetPlan().GetId(), Spec: spec}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "allows 1 apps per organization")
}

func TestCreateAppWithoutAClusterSaysWhy(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	plans := testenv.Client(env, planv1connect.NewPlanServiceClient, admin.Token)
	plan, err := plans.CreatePlan(ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "small", CpuMillis: 500, MemoryMib: 256, PricePerHour: 12, Currency: "USD", MaxReplicas: 3, MaxApps: 5}}))
	require.NoError(t, err)
	user := env.NewUser(t, "dev@example.com")
	orgID := env.NewOrg(t, user, "Acme")
	apps := testenv.Client(env, appv1connect.NewAppServiceClient, user.Token)
	_, err = apps.CreateApp(ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: orgID.String(), Name: "web",
		PlanId: plan.Msg.GetPlan().GetId(), Spec: &appv1.AppSpec{Image: "nginx:1.27", Port: 80, Replicas: 1}}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "no active cluster")
}

func TestTenantSpecsAskingForHostAccessAreRefused(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	plans := testenv.Client(env, planv1connect.NewPlanServiceClient, admin.Token)
	plan, err := plans.CreatePlan(ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "small", CpuMillis: 500, MemoryMib: 256, PricePerHour: 12, Currency: "USD", MaxReplicas: 3, MaxApps: 5}}))
	require.NoError(t, err)
	user := env.NewUser(t, "dev@example.com")
	orgID := env.NewOrg(t, user, "Acme")
	apps := testenv.Client(env, appv1connect.NewAppServiceClient, user.Token)
	for _, tc := range []struct {
		field string
		edit  func(*appv1.AppSpec)
	}{
		{"spec.privileged", func(s *appv1.AppSpec) { s.Privileged = true }},
		{"spec.network_mode", func(s *appv1.AppSpec) { s.NetworkMode = "host" }},
		{"spec.mounts[0]", func(s *appv1.AppSpec) {
			s.Mounts = []*appv1.Mount{{Type: "bind", Source: "/etc", Target: "/host-etc"}}
		}},
		{"spec.mounts[0]", func(s *appv1.AppSpec) {
			s.Mounts = []*appv1.Mount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}},
		{"spec.cap_add", func(s *appv1.AppSpec) { s.CapAdd = []string{"NET_ADMIN"} }},
		{"spec.devices", func(s *appv1.AppSpec) { s.Devices = []string{"/dev/kvm"} }},
		{"spec.published_ports", func(s *appv1.AppSpec) { s.PublishedPorts = []*appv1.PublishedPort{{HostPort: 22, ContainerPort: 22}} }},
		{"spec.image", func(s *appv1.AppSpec) { s.Image = "UPPER/case" }},
		{"spec.env[0].name", func(s *appv1.AppSpec) { s.Env = []*appv1.EnvVar{{Name: "1BAD", Value: "x"}} }},
		{"spec.port", func(s *appv1.AppSpec) { s.Port = 70000 }},
		{"spec.health_check.interval", func(s *appv1.AppSpec) {
			s.HealthCheck = &appv1.HealthCheck{Command: []string{"/app", "-check"}, Interval: durationpb.New(time.Millisecond)}
		}},
	} {
		spec := &appv1.AppSpec{Image: "nginx:1.27", Port: 80, Replicas: 1}
		tc.edit(spec)
		_, err := apps.CreateApp(ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: orgID.String(), Name: "web",
			PlanId: plan.Msg.GetPlan().GetId(), Spec: spec}))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), tc.field)
		require.Contains(t, err.Error(), tc.field, tc.field)
	}
	// Nothing was created.
	list, err := apps.ListApps(ctx, connect.NewRequest(&appv1.ListAppsRequest{OrganizationId: orgID.String()}))
	require.NoError(t, err)
	require.Empty(t, list.Msg.GetApps())
}

func TestReplicaMetricsAndDomainsInput(t *testing.T) {
	f := setupApps(t)
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	app := created.Msg.GetApp()

	// Container samples from any node of the app's cluster become per-replica series;
	// network counters become rates.
	svc := workload.ServiceName(app.GetId())
	now := time.Now().Truncate(time.Second)
	for i, at := range []time.Time{now.Add(-20 * time.Second), now.Add(-10 * time.Second)} {
		_, err := f.manager.agent.Client.ReportWorkloads(f.ctx, connect.NewRequest(&agentv1.ReportWorkloadsRequest{
			SampledAt: timestamppb.New(at), Containers: []*agentv1.ContainerStats{
				{ServiceName: svc, TaskId: "t1", Slot: 1, CpuPercent: 12.5, MemoryBytes: 64 << 20,
					NetRxBytes: int64(1000 + i*5000), NetTxBytes: int64(2000 + i*10000)},
				{ServiceName: "someone-elses-service", TaskId: "x", Slot: 1, CpuPercent: 99},
				// An app's name, but of no app on this node's cluster: not taken.
				{ServiceName: workload.ServiceName(uuid.NewString()), TaskId: "y", Slot: 1, CpuPercent: 99},
			}}))
		require.NoError(t, err)
	}
	m, err := f.apps.GetAppMetrics(f.ctx, connect.NewRequest(&appv1.GetAppMetricsRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	series := map[string][]float64{}
	for _, s := range m.Msg.GetSeries() {
		require.EqualValues(t, 1, s.GetReplica())
		for _, p := range s.GetPoints() {
			series[s.GetName()] = append(series[s.GetName()], p.GetValue())
		}
	}
	require.Equal(t, []float64{12.5, 12.5}, series["cpu_percent"])
	require.Equal(t, []float64{64 << 20, 64 << 20}, series["memory_bytes"])
	require.Equal(t, []float64{500}, series["net_rx_bytes_per_second"])
	require.Equal(t, []float64{1000}, series["net_tx_bytes_per_second"])

	// Domains: names are checked and stored in ASCII; wildcards, the platform's own names and
	// a name another app holds are refused.
	domains := testenv.Client(f.env, domainv1connect.NewDomainServiceClient, f.userToken)
	add := func(host string) (*domainv1.Domain, error) {
		r, err := domains.AddDomain(f.ctx, connect.NewRequest(&domainv1.AddDomainRequest{OrganizationId: f.orgID.String(),
			AppId: app.GetId(), Hostname: host}))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetDomain(), nil
	}
	for _, bad := range []string{"*.example.com", "web-acme.apps.localhost", "no spaces.example.com", "localhost", "10.0.0.1"} {
		_, err := add(bad)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), bad)
		require.Contains(t, err.Error(), "hostname", bad)
	}
	d, err := add("Bücher.Example")
	require.NoError(t, err)
	require.Equal(t, "xn--bcher-kva.example", d.GetHostname())
	require.Equal(t, "_skypanel-challenge.xn--bcher-kva.example", d.GetRecordName())
	require.False(t, d.GetVerified())
	_, err = add("xn--bcher-kva.example")
	require.Equal(t, connect.CodeAlreadyExists, connect.CodeOf(err))
	_, err = domains.SetPrimaryDomain(f.ctx, connect.NewRequest(&domainv1.SetPrimaryDomainRequest{OrganizationId: f.orgID.String(), DomainId: d.GetId()}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "an unverified domain cannot be primary")
}

func TestAppsArePricedInTheWalletsCurrency(t *testing.T) {
	f := setupApps(t)
	require.NoError(t, f.env.Store.InTx(f.ctx, func(q *store.Queries) error {
		_, _, err := billing.Credit(f.ctx, q, billing.Entry{OrganizationID: f.orgID, Amount: 1000, Currency: "USD",
			Reference: "test:topup", Actor: "test"})
		return err
	}))
	plans := testenv.Client(f.env, planv1connect.NewPlanServiceClient, f.adminUser.Token)
	eur, err := plans.CreatePlan(f.ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "euro", CpuMillis: 100, MemoryMib: 64, PricePerHour: 5, Currency: "EUR", MaxReplicas: 3, MaxApps: 5}}))
	require.NoError(t, err)
	_, err = f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: f.orgID.String(), Name: "web",
		PlanId: eur.Msg.GetPlan().GetId(), Spec: f.spec()}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	require.Contains(t, err.Error(), "priced in EUR, and this organization pays in USD")
	_, err = f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: f.orgID.String(), Name: "web",
		PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err, "the USD plan is fine")

	// A platform admin overrides the app's price (history kept, newest first), then ends it.
	created, err := f.apps.ListApps(f.ctx, connect.NewRequest(&appv1.ListAppsRequest{OrganizationId: f.orgID.String()}))
	require.NoError(t, err)
	appID := created.Msg.GetApps()[0].GetId()
	asAdmin := testenv.Client(f.env, billingv1connect.NewBillingServiceClient, f.adminUser.Token)
	price := int64(7)
	_, err = asAdmin.SetAppPrice(f.ctx, connect.NewRequest(&billingv1.SetAppPriceRequest{OrganizationId: f.orgID.String(),
		AppId: appID, UnitPrice: &price, Reason: "partner discount"}))
	require.NoError(t, err)
	_, err = asAdmin.SetAppPrice(f.ctx, connect.NewRequest(&billingv1.SetAppPriceRequest{OrganizationId: f.orgID.String(),
		AppId: appID, Reason: "discount over"}))
	require.NoError(t, err)
	_, err = asAdmin.SetAppPrice(f.ctx, connect.NewRequest(&billingv1.SetAppPriceRequest{OrganizationId: f.orgID.String(),
		AppId: appID, UnitPrice: &price, Reason: ""}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	asOwner := testenv.Client(f.env, billingv1connect.NewBillingServiceClient, f.userToken)
	prices, err := asOwner.ListAppPrices(f.ctx, connect.NewRequest(&billingv1.ListAppPricesRequest{OrganizationId: f.orgID.String(), AppId: appID}))
	require.NoError(t, err)
	require.Len(t, prices.Msg.GetOverrides(), 2)
	require.Nil(t, prices.Msg.GetOverrides()[0].UnitPrice, "the newest ended the override")
	require.EqualValues(t, 7, prices.Msg.GetOverrides()[1].GetUnitPrice())
	require.Equal(t, "partner discount", prices.Msg.GetOverrides()[1].GetReason())
}

// The manager pins a tag to the digest its registry gives (service_apply's output): the
// release keeps it, and a rollback to that release runs that digest even after the tag moved.
func TestAReleaseKeepsTheDigestItsImageWasPinnedTo(t *testing.T) {
	f := setupApps(t)
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	app, dep := created.Msg.GetApp(), created.Msg.GetDeployment()
	digest := "sha256:" + strings.Repeat("ab", 32)
	apply := f.applyWithOutput(t, `{"changed": true, "image_digest": "`+digest+`"}`)
	require.Equal(t, "whoami:1", apply.GetImage())
	f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	f.report(t, app.GetId(), dep.GetId(), "", "", 2)
	f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)

	rels, err := f.apps.ListReleases(f.ctx, connect.NewRequest(&appv1.ListReleasesRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	require.Len(t, rels.Msg.GetReleases(), 1)
	first := rels.Msg.GetReleases()[0]
	require.Equal(t, digest, first.GetImageDigest())

	// A redeploy makes release 2 of the same tag; an output that is not a digest is ignored.
	re, err := f.apps.Redeploy(f.ctx, connect.NewRequest(&appv1.RedeployRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	apply = f.applyWithOutput(t, `{"changed": true, "image_digest": "latest; rm -rf /"}`)
	require.Equal(t, "whoami:1", apply.GetImage(), "a new release resolves the tag again")
	f.waitDeployment(t, re.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	f.report(t, app.GetId(), re.Msg.GetDeployment().GetId(), dep.GetId(), "completed", 2)
	f.waitDeployment(t, re.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	rels, err = f.apps.ListReleases(f.ctx, connect.NewRequest(&appv1.ListReleasesRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	for _, r := range rels.Msg.GetReleases() {
		if r.GetVersion() == 2 {
			require.Empty(t, r.GetImageDigest())
		}
	}

	rb, err := f.apps.Rollback(f.ctx, connect.NewRequest(&appv1.RollbackRequest{OrganizationId: f.orgID.String(), AppId: app.GetId(), ReleaseId: first.GetId()}))
	require.NoError(t, err)
	apply = f.apply(t)
	require.Equal(t, "whoami:1@"+digest, apply.GetImage(), "the rollback runs the digest release 1 ran")
	require.NotEmpty(t, rb.Msg.GetDeployment().GetId())
}

// A manager's answer wakes the deployment waiting for it: with polling slowed to an hour,
// the answers alone carry a deployment from the network to the service spec to rolling out.
func TestAManagersAnswerWakesTheDeploymentWaitingForIt(t *testing.T) {
	f := setupApps(t, testenv.WithConfig(func(c *config.Config) { c.DeployPoll = time.Hour }))
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	f.apply(t) // the service spec came after the network's answer, not after an hour
	f.waitDeployment(t, created.Msg.GetDeployment().GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
}
