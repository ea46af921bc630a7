package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/store"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/workload"
)

// ListDeployments lists the app's deployments, newest first.
func (s *AppService) ListDeployments(ctx context.Context, req *connect.Request[appv1.ListDeploymentsRequest]) (*connect.Response[appv1.ListDeploymentsResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	if _, err := s.opts.Store.App(ctx, orgID, appID); err != nil {
		return nil, storeErr("app", err)
	}
	size := int(req.Msg.GetPageSize())
	if size == 0 {
		size = 50
	}
	var before time.Time
	if t := req.Msg.GetPageToken(); t != "" {
		var err error
		if before, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, invalid(workload.FieldErrors{{Field: "page_token", Reason: "not a token from a previous page"}})
		}
	}
	ds, err := s.opts.Store.Deployments(ctx, orgID, appID, before, size+1)
	if err != nil {
		return nil, storeErr("deployments", err)
	}
	out := &appv1.ListDeploymentsResponse{}
	if len(ds) > size {
		ds = ds[:size]
		out.NextPageToken = ds[size-1].CreatedAt.Format(time.RFC3339Nano)
	}
	for _, d := range ds {
		out.Deployments = append(out.Deployments, deploymentProto(d))
	}
	return connect.NewResponse(out), nil
}

// GetDeployment returns one deployment with its steps.
func (s *AppService) GetDeployment(ctx context.Context, req *connect.Request[appv1.GetDeploymentRequest]) (*connect.Response[appv1.GetDeploymentResponse], error) {
	d, err := s.opts.Store.Deployment(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetDeploymentId()))
	if err != nil {
		return nil, storeErr("deployment", err)
	}
	return connect.NewResponse(&appv1.GetDeploymentResponse{Deployment: deploymentProto(d)}), nil
}

// watchPoll is how often WatchDeployment looks for changes.
const watchPoll = 500 * time.Millisecond

// WatchDeployment sends the deployment and the app's replicas at every change until the
// deployment ends.
func (s *AppService) WatchDeployment(ctx context.Context, req *connect.Request[appv1.WatchDeploymentRequest], stream *connect.ServerStream[appv1.WatchDeploymentResponse]) error {
	orgID, id := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetDeploymentId())
	d, err := s.opts.Store.Deployment(ctx, orgID, id)
	if err != nil {
		return storeErr("deployment", err)
	}
	app, err := s.opts.Store.App(ctx, orgID, d.AppID)
	if err != nil {
		return storeErr("app", err)
	}
	// Nodes and release versions are read once: the deployment watched is already among them.
	names, err := s.taskContext(ctx, app)
	if err != nil {
		return err
	}
	var last *appv1.WatchDeploymentResponse
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for {
		if d, err = s.opts.Store.Deployment(ctx, orgID, id); err != nil {
			return storeErr("deployment", err)
		}
		replicas, err := s.replicas(ctx, app.ID, names)
		if err != nil {
			return err
		}
		msg := &appv1.WatchDeploymentResponse{Deployment: deploymentProto(d), Replicas: replicas}
		if last == nil || !proto.Equal(last, msg) {
			if err := stream.Send(msg); err != nil {
				return err
			}
			last = msg
		}
		if d.Finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ListReplicas lists the app's tasks as the cluster reported them.
func (s *AppService) ListReplicas(ctx context.Context, req *connect.Request[appv1.ListReplicasRequest]) (*connect.Response[appv1.ListReplicasResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	app, err := s.opts.Store.App(ctx, orgID, appID)
	if err != nil {
		return nil, storeErr("app", err)
	}
	names, err := s.taskContext(ctx, app)
	if err != nil {
		return nil, err
	}
	rs, err := s.replicas(ctx, appID, names)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.ListReplicasResponse{Replicas: rs}), nil
}

// replicas lists the app's tasks as the cluster last reported them.
func (s *AppService) replicas(ctx context.Context, appID uuid.UUID, names taskNames) ([]*appv1.Replica, error) {
	svc, err := s.opts.Store.AppServiceOf(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("replicas", err)
	}
	tasks, err := deploy.Tasks(svc)
	if err != nil {
		return nil, storeErr("replicas", err)
	}
	out := make([]*appv1.Replica, 0, len(tasks))
	for _, t := range tasks {
		h := names.hosts[t.GetSwarmNodeId()]
		out = append(out, &appv1.Replica{Slot: t.GetSlot(), TaskId: t.GetId(), NodeId: h.id, NodeHostname: h.hostname,
			State: t.GetState(), DesiredState: t.GetDesiredState(), Error: t.GetError(),
			ReleaseVersion: names.versions[t.GetDeploymentId()], UpdatedAt: t.GetUpdatedAt()})
	}
	return out, nil
}

type nodeName struct{ id, hostname string }

// taskNames turn what tasks report into what callers see: swarm node ids into nodes, and
// deployment ids into release versions.
type taskNames struct {
	hosts    map[string]nodeName
	versions map[string]int32
}

// taskContext reads the app's taskNames.
func (s *AppService) taskContext(ctx context.Context, app store.App) (taskNames, error) {
	ns, err := s.opts.Store.ClusterNodes(ctx, app.ClusterID)
	if err != nil {
		return taskNames{}, storeErr("nodes", err)
	}
	names := taskNames{hosts: make(map[string]nodeName, len(ns)), versions: map[string]int32{}}
	for _, n := range ns {
		names.hosts[n.SwarmNodeID] = nodeName{id: n.ID.String(), hostname: n.Hostname}
	}
	ds, err := s.opts.Store.Deployments(ctx, app.OrganizationID, app.ID, time.Time{}, 200)
	if err != nil {
		return taskNames{}, storeErr("deployments", err)
	}
	for _, d := range ds {
		names.versions[d.ID.String()] = d.ReleaseVersion
	}
	return names, nil
}

// GetAppMetrics returns per-replica series over a range (default: the last hour).
func (s *AppService) GetAppMetrics(ctx context.Context, req *connect.Request[appv1.GetAppMetricsRequest]) (*connect.Response[appv1.GetAppMetricsResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	if _, err := s.opts.Store.App(ctx, orgID, appID); err != nil {
		return nil, storeErr("app", err)
	}
	to := time.Now()
	if req.Msg.GetTo() != nil {
		to = req.Msg.GetTo().AsTime()
	}
	from := to.Add(-time.Hour)
	if req.Msg.GetFrom() != nil {
		from = req.Msg.GetFrom().AsTime()
	}
	if !from.Before(to) {
		return nil, invalid(workload.FieldErrors{{Field: "from", Reason: "must be before to"}})
	}
	ms, err := s.opts.Store.AppMetrics(ctx, appID, from, to)
	if err != nil {
		return nil, storeErr("metrics", err)
	}
	return connect.NewResponse(&appv1.GetAppMetricsResponse{Series: replicaSeries(ms)}), nil
}

// replicaSeries turns samples (by slot, then time) into series; network counters become
// rates between consecutive samples of the same task.
func replicaSeries(ms []store.AppMetric) []*appv1.ReplicaSeries {
	var out []*appv1.ReplicaSeries
	var cpu, mem, rx, tx *appv1.ReplicaSeries
	var prev *store.AppMetric
	for i := range ms {
		m := &ms[i]
		if prev == nil || prev.Slot != m.Slot {
			cpu = &appv1.ReplicaSeries{Replica: m.Slot, Name: "cpu_percent"}
			mem = &appv1.ReplicaSeries{Replica: m.Slot, Name: "memory_bytes"}
			rx = &appv1.ReplicaSeries{Replica: m.Slot, Name: "net_rx_bytes_per_second"}
			tx = &appv1.ReplicaSeries{Replica: m.Slot, Name: "net_tx_bytes_per_second"}
			out = append(out, cpu, mem, rx, tx)
			prev = nil
		}
		at := timestamppb.New(m.SampledAt)
		cpu.Points = append(cpu.Points, &appv1.MetricPoint{At: at, Value: m.CPUPercent})
		mem.Points = append(mem.Points, &appv1.MetricPoint{At: at, Value: float64(m.MemoryBytes)})
		if prev != nil && prev.TaskID == m.TaskID && m.SampledAt.After(prev.SampledAt) &&
			m.NetRxBytes >= prev.NetRxBytes && m.NetTxBytes >= prev.NetTxBytes {
			secs := m.SampledAt.Sub(prev.SampledAt).Seconds()
			rx.Points = append(rx.Points, &appv1.MetricPoint{At: at, Value: float64(m.NetRxBytes-prev.NetRxBytes) / secs})
			tx.Points = append(tx.Points, &appv1.MetricPoint{At: at, Value: float64(m.NetTxBytes-prev.NetTxBytes) / secs})
		}
		prev = m
	}
	return out
}

// ParseDotenv reads a .env file into variables.
func (s *AppService) ParseDotenv(ctx context.Context, req *connect.Request[appv1.ParseDotenvRequest]) (*connect.Response[appv1.ParseDotenvResponse], error) {
	env, err := workload.ParseDotenv(req.Msg.GetContent())
	if err != nil {
		return nil, invalid(workload.FieldErrors{{Field: "content", Reason: err.Error()}})
	}
	return connect.NewResponse(&appv1.ParseDotenvResponse{Env: env}), nil
}

// ExportDotenv writes the app's variables as a .env file, leaving secret values out.
func (s *AppService) ExportDotenv(ctx context.Context, req *connect.Request[appv1.ExportDotenvRequest]) (*connect.Response[appv1.ExportDotenvResponse], error) {
	app, err := s.opts.Store.App(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId()))
	if err != nil {
		return nil, storeErr("app", err)
	}
	spec, err := deploy.MaskedSpec(app.Spec)
	if err != nil {
		return nil, storeErr("app", err)
	}
	return connect.NewResponse(&appv1.ExportDotenvResponse{Content: workload.FormatDotenv(spec.GetEnv())}), nil
}

// appProto is an app as callers see it.
func (s *AppService) appProto(ctx context.Context, app store.App) (*appv1.App, error) {
	out, err := s.appProtos(ctx, []store.App{app})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (s *AppService) appProtos(ctx context.Context, apps []store.App) ([]*appv1.App, error) {
	ids := make([]uuid.UUID, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	latest, err := s.opts.Store.LatestDeployments(ctx, ids)
	if err != nil {
		return nil, storeErr("deployments", err)
	}
	services, err := s.opts.Store.AppServicesOf(ctx, ids)
	if err != nil {
		return nil, storeErr("services", err)
	}
	out := make([]*appv1.App, 0, len(apps))
	for _, a := range apps {
		spec, err := deploy.MaskedSpec(a.Spec)
		if err != nil {
			return nil, storeErr("app", err)
		}
		running := int32(0)
		if svc, ok := services[a.ID]; ok {
			tasks, err := deploy.Tasks(svc)
			if err != nil {
				return nil, storeErr("app", err)
			}
			for _, t := range tasks {
				if t.GetState() == "running" && t.GetDesiredState() == "running" {
					running++
				}
			}
		}
		host := s.opts.Deploy.DefaultHostname(a)
		pb := &appv1.App{Id: a.ID.String(), OrganizationId: a.OrganizationID.String(), Name: a.Name,
			PlanId: a.PlanID.String(), ClusterId: a.ClusterID.String(), Spec: spec, RunningReplicas: running,
			DefaultHostname: host, Url: "http://" + host, CurrentRelease: a.CurrentReleaseVersion,
			CreatedAt: timestamppb.New(a.CreatedAt), UpdatedAt: timestamppb.New(a.UpdatedAt)}
		if d, ok := latest[a.ID]; ok {
			pb.LastDeployment = deploymentProto(d)
		}
		pb.Status = appStatus(a, pb.LastDeployment, running)
		out = append(out, pb)
	}
	return out, nil
}

func appStatus(a store.App, last *appv1.Deployment, running int32) appv1.AppStatus {
	switch {
	case a.Deleting:
		return appv1.AppStatus_APP_STATUS_DELETING
	case a.Suspended:
		return appv1.AppStatus_APP_STATUS_SUSPENDED
	case last != nil && last.GetFinishedAt() == nil:
		return appv1.AppStatus_APP_STATUS_DEPLOYING
	case a.Replicas == 0:
		return appv1.AppStatus_APP_STATUS_STOPPED
	case running >= a.Replicas:
		return appv1.AppStatus_APP_STATUS_RUNNING
	case running == 0 && last != nil && last.GetState() == appv1.DeploymentState_DEPLOYMENT_STATE_FAILED:
		return appv1.AppStatus_APP_STATUS_FAILED
	}
	return appv1.AppStatus_APP_STATUS_DEGRADED
}

var deploymentKinds = map[string]appv1.DeploymentKind{
	"deploy": appv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY, "rollback": appv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK,
	"scale": appv1.DeploymentKind_DEPLOYMENT_KIND_SCALE, "restart": appv1.DeploymentKind_DEPLOYMENT_KIND_RESTART,
	"stop": appv1.DeploymentKind_DEPLOYMENT_KIND_STOP, "start": appv1.DeploymentKind_DEPLOYMENT_KIND_START,
	"delete": appv1.DeploymentKind_DEPLOYMENT_KIND_DELETE, "suspend": appv1.DeploymentKind_DEPLOYMENT_KIND_SUSPEND,
	"resume": appv1.DeploymentKind_DEPLOYMENT_KIND_RESUME,
}

var deploymentStates = map[string]appv1.DeploymentState{
	"pending": appv1.DeploymentState_DEPLOYMENT_STATE_PENDING, "preparing": appv1.DeploymentState_DEPLOYMENT_STATE_PREPARING,
	"applying": appv1.DeploymentState_DEPLOYMENT_STATE_APPLYING, "rolling_out": appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT,
	"succeeded": appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, "failed": appv1.DeploymentState_DEPLOYMENT_STATE_FAILED,
	"rolled_back": appv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK, "superseded": appv1.DeploymentState_DEPLOYMENT_STATE_SUPERSEDED,
}

func deploymentProto(d store.Deployment) *appv1.Deployment {
	out := &appv1.Deployment{Id: d.ID.String(), AppId: d.AppID.String(), ReleaseId: d.ReleaseID.String(),
		ReleaseVersion: d.ReleaseVersion, Kind: deploymentKinds[d.Kind], State: deploymentStates[d.State],
		Message: d.Message, AutomaticRollback: d.AutomaticRollback, Replicas: d.Replicas,
		CreatedAt: timestamppb.New(d.CreatedAt), CreatedByEmail: d.CreatedByEmail}
	if d.FinishedAt != nil {
		out.FinishedAt = timestamppb.New(*d.FinishedAt)
	}
	for _, e := range d.Events {
		out.Events = append(out.Events, &appv1.DeploymentEvent{State: deploymentStates[e.State], At: timestamppb.New(e.At), Message: e.Message})
	}
	return out
}

// StreamLogs sends the app's log lines from every replica, as a manager of its cluster
// follows them.
func (s *AppService) StreamLogs(ctx context.Context, req *connect.Request[appv1.StreamLogsRequest], stream *connect.ServerStream[appv1.StreamLogsResponse]) error {
	app, err := s.opts.Store.App(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId()))
	if err != nil {
		return storeErr("app", err)
	}
	tail := req.Msg.GetTail()
	if tail == 0 {
		tail = 100
	}
	var since time.Time
	if req.Msg.GetSince() != nil {
		since = req.Msg.GetSince().AsTime()
	}
	names, err := s.taskContext(ctx, app)
	if err != nil {
		return err
	}
	logs, stop, err := s.opts.Deploy.FollowLogs(ctx, app, tail, since, req.Msg.GetFollow())
	if errors.Is(err, deploy.ErrNoManagerSession) {
		return failedPrecondition("logs are unavailable: %v", err)
	}
	if err != nil {
		return storeErr("logs", err)
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-logs.Done:
			return nil
		case b := <-logs.C:
			if len(b.Lines) > 0 {
				out := &appv1.StreamLogsResponse{Lines: make([]*appv1.LogLine, 0, len(b.Lines))}
				for _, l := range b.Lines {
					out.Lines = append(out.Lines, &appv1.LogLine{At: l.GetAt(), Replica: l.GetSlot(), TaskId: l.GetTaskId(),
						NodeId: names.hosts[l.GetSwarmNodeId()].id, Stream: l.GetStream(), Text: l.GetText()})
				}
				if err := stream.Send(out); err != nil {
					return err
				}
			}
			if b.Done {
				if b.Err != "" {
					return connect.NewError(connect.CodeUnavailable, errors.New("the log stream ended: "+b.Err))
				}
				return nil
			}
		}
	}
}
