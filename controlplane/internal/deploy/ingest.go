package deploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/workload"
)

// Ingest takes in a node's workload report: the services and tasks a manager sees, and the
// container samples of any node. Only services of apps placed on the node's own cluster are
// taken: a node cannot speak for another cluster's apps.
func (d *Deployer) Ingest(ctx context.Context, nodeID uuid.UUID, r *agentv1.ReportWorkloadsRequest) error {
	if len(r.GetServices()) == 0 && len(r.GetContainers()) == 0 && !r.GetComplete() {
		return nil
	}
	n, err := d.opts.Store.NodeByID(ctx, nodeID)
	if err != nil {
		return fmt.Errorf("ingest workloads: %w", err)
	}
	byService, err := d.clusterServices(ctx, n.ClusterID, r)
	if err != nil {
		return fmt.Errorf("ingest workloads: %w", err)
	}
	var metrics []store.AppMetric
	at := r.GetSampledAt().AsTime()
	for _, c := range r.GetContainers() {
		appID, ok := byService[c.GetServiceName()]
		if !ok {
			continue
		}
		metrics = append(metrics, store.AppMetric{AppID: appID, TaskID: c.GetTaskId(), Slot: c.GetSlot(), SampledAt: at,
			CPUPercent: c.GetCpuPercent(), MemoryBytes: c.GetMemoryBytes(), NetRxBytes: c.GetNetRxBytes(), NetTxBytes: c.GetNetTxBytes()})
	}
	return d.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var seen []uuid.UUID
		for _, s := range r.GetServices() {
			appID, ok := byService[s.GetServiceName()]
			if !ok {
				continue
			}
			tasks, err := encodeTasks(s.GetTasks())
			if err != nil {
				return err
			}
			svc := store.AppService{AppID: appID, DeploymentID: s.GetDeploymentId(),
				PreviousDeploymentID: s.GetPreviousDeploymentId(), UpdateState: s.GetUpdateState(),
				UpdateMessage: s.GetUpdateMessage(), Desired: s.GetDesiredReplicas(), Tasks: tasks}
			if err := q.PutAppService(ctx, svc); err != nil {
				return err
			}
			seen = append(seen, appID)
		}
		if r.GetComplete() && n.Role == int16(agentv1.NodeRole_NODE_ROLE_MANAGER) {
			if err := q.DropAppServicesExcept(ctx, n.ClusterID, seen); err != nil {
				return err
			}
		}
		return q.InsertAppMetrics(ctx, metrics)
	})
}

func encodeTasks(tasks []*agentv1.TaskStatus) ([]byte, error) {
	items := make([]json.RawMessage, 0, len(tasks))
	for _, t := range tasks {
		b, err := protojson.Marshal(t)
		if err != nil {
			return nil, err
		}
		items = append(items, b)
	}
	return json.Marshal(items)
}

// clusterServices maps the report's service names to their apps, keeping only apps placed on
// the cluster: one indexed lookup of the ids the names carry, not a read of every app.
func (d *Deployer) clusterServices(ctx context.Context, clusterID uuid.UUID, r *agentv1.ReportWorkloadsRequest) (map[string]uuid.UUID, error) {
	named := map[string]uuid.UUID{}
	add := func(name string) {
		if id, ok := workload.ParseServiceName(name); ok {
			named[name] = uuid.MustParse(id)
		}
	}
	for _, s := range r.GetServices() {
		add(s.GetServiceName())
	}
	for _, c := range r.GetContainers() {
		add(c.GetServiceName())
	}
	ids := make([]uuid.UUID, 0, len(named))
	for _, id := range named {
		ids = append(ids, id)
	}
	placed, err := d.opts.Store.AppsPlacedOn(ctx, clusterID, ids)
	if err != nil {
		return nil, err
	}
	for name, id := range named {
		if !placed[id] {
			delete(named, name)
		}
	}
	return named, nil
}
