package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/workload"
)

// A manager speaks for its own cluster only: the manager of another cluster reporting a
// service (and container samples) named for an app that runs elsewhere changes nothing, and
// its complete report does not drop the app's service either.
func TestAManagerCannotReportAnotherClustersApps(t *testing.T) {
	f := setupApps(t)
	created, err := f.apps.CreateApp(f.ctx, connect.NewRequest(&appv1.CreateAppRequest{
		OrganizationId: f.orgID.String(), Name: "web", PlanId: f.plan.GetId(), Spec: f.spec()}))
	require.NoError(t, err)
	app, dep := created.Msg.GetApp(), created.Msg.GetDeployment()
	require.EqualValues(t, 2, f.apply(t).GetReplicas())
	f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	f.report(t, app.GetId(), dep.GetId(), "", "", 2)
	f.waitDeployment(t, dep.GetId(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)

	// A second cluster with its own manager.
	other, err := f.admin.CreateCluster(f.ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "other"}))
	require.NoError(t, err)
	otherID := other.Msg.GetCluster().GetId()
	mgr, err := f.env.Enroll(f.ctx, f.env.EnrollmentToken(t, f.adminUser, testenv.UUID(otherID), agentv1.NodeRole_NODE_ROLE_MANAGER, 1),
		testenv.Facts("other-mgr", "10.0.1.1"))
	require.NoError(t, err)
	stream := openStream(t, mgr, 0)
	init := stream.next()
	out, _ := json.Marshal(map[string]string{"swarm_id": "swarm-2", "swarm_node_id": "swarm-other",
		"manager_join_token": "SWMTKN-2-m", "worker_join_token": "SWMTKN-2-w"})
	stream.ack(init.GetSeq(), string(out))

	// It claims the app has five replicas of a deployment of its own, with samples.
	svc := &agentv1.ServiceStatus{ServiceName: workload.ServiceName(app.GetId()), DeploymentId: uuid.NewString(),
		DesiredReplicas: 5}
	var samples []*agentv1.ContainerStats
	for i := range 5 {
		task := uuid.NewString()
		svc.Tasks = append(svc.Tasks, &agentv1.TaskStatus{Id: task, Slot: int32(i + 1), SwarmNodeId: "swarm-other",
			State: "running", DesiredState: "running", DeploymentId: svc.GetDeploymentId()})
		samples = append(samples, &agentv1.ContainerStats{ServiceName: svc.GetServiceName(), TaskId: task, Slot: int32(i + 1),
			CpuPercent: 99, MemoryBytes: 1 << 30})
	}
	_, err = mgr.Client.ReportWorkloads(f.ctx, connect.NewRequest(&agentv1.ReportWorkloadsRequest{
		SampledAt: timestamppb.Now(), Services: []*agentv1.ServiceStatus{svc}, Containers: samples, Complete: true}))
	require.NoError(t, err)

	reps, err := f.apps.ListReplicas(f.ctx, connect.NewRequest(&appv1.ListReplicasRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	require.Len(t, reps.Msg.GetReplicas(), 2, "still the two replicas its own manager reported")
	for _, r := range reps.Msg.GetReplicas() {
		require.EqualValues(t, 1, r.GetReleaseVersion())
		require.NotEqual(t, "other-mgr", r.GetNodeHostname())
	}
	got, err := f.apps.GetApp(f.ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: f.orgID.String(), AppId: app.GetId()}))
	require.NoError(t, err)
	require.Equal(t, appv1.AppStatus_APP_STATUS_RUNNING, got.Msg.GetApp().GetStatus())
	require.EqualValues(t, 2, got.Msg.GetApp().GetRunningReplicas())
	metrics, err := f.apps.GetAppMetrics(f.ctx, connect.NewRequest(&appv1.GetAppMetricsRequest{OrganizationId: f.orgID.String(),
		AppId: app.GetId(), From: timestamppb.New(time.Now().Add(-time.Hour)), To: timestamppb.New(time.Now().Add(time.Minute))}))
	require.NoError(t, err)
	require.Empty(t, metrics.Msg.GetSeries(), "no samples taken from another cluster's node")
}
