package api

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
)

// watchRefresh is how often WatchNodes looks again without being told of a change.
const watchRefresh = 30 * time.Second

// ListNodes lists a cluster's nodes that are not removed, oldest first.
func (s *ClusterService) ListNodes(ctx context.Context, req *connect.Request[clusterv1.ListNodesRequest]) (*connect.Response[clusterv1.ListNodesResponse], error) {
	list, err := s.clusterNodes(ctx, uuid.MustParse(req.Msg.GetClusterId()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.ListNodesResponse{Nodes: list}), nil
}

// clusterNodes lists a cluster's nodes; NotFound for an unknown cluster.
func (s *ClusterService) clusterNodes(ctx context.Context, clusterID uuid.UUID) ([]*clusterv1.Node, error) {
	if _, err := s.opts.Store.ClusterByID(ctx, clusterID); err != nil {
		return nil, storeErr("cluster", err)
	}
	ns, err := s.opts.Store.ClusterNodes(ctx, clusterID)
	if err != nil {
		return nil, storeErr("nodes", err)
	}
	out := make([]*clusterv1.Node, len(ns))
	for i, n := range ns {
		out[i] = nodeProto(n)
	}
	return out, nil
}

// GetNode returns a node, a removed one too.
func (s *ClusterService) GetNode(ctx context.Context, req *connect.Request[clusterv1.GetNodeRequest]) (*connect.Response[clusterv1.GetNodeResponse], error) {
	n, err := s.opts.Store.NodeByID(ctx, uuid.MustParse(req.Msg.GetNodeId()))
	if err != nil {
		return nil, storeErr("node", err)
	}
	return connect.NewResponse(&clusterv1.GetNodeResponse{Node: nodeProto(n)}), nil
}

// WatchNodes sends the cluster's nodes now and again whenever they change on any replica
// (state, labels, lifecycle, and the latest reports as they are written), skipping lists
// equal to the one sent last.
func (s *ClusterService) WatchNodes(ctx context.Context, req *connect.Request[clusterv1.WatchNodesRequest], stream *connect.ServerStream[clusterv1.WatchNodesResponse]) error {
	clusterID := uuid.MustParse(req.Msg.GetClusterId())
	changed, stop := s.opts.Nodes.WatchNodes(clusterID)
	defer stop()
	var last *clusterv1.WatchNodesResponse
	send := func() error {
		list, err := s.clusterNodes(ctx, clusterID)
		if err != nil {
			return err
		}
		resp := &clusterv1.WatchNodesResponse{Nodes: list}
		if last != nil && proto.Equal(last, resp) {
			return nil
		}
		last = resp
		return stream.Send(resp)
	}
	if err := send(); err != nil {
		return err
	}
	refresh := time.NewTicker(watchRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changed:
			if !ok {
				return connect.NewError(connect.CodeUnavailable, errors.New("the control plane is shutting down: watch again"))
			}
		case <-refresh.C:
		}
		if err := send(); err != nil {
			return err
		}
	}
}

// DrainNode moves the node's tasks elsewhere and keeps new ones off it.
func (s *ClusterService) DrainNode(ctx context.Context, req *connect.Request[clusterv1.DrainNodeRequest]) (*connect.Response[clusterv1.DrainNodeResponse], error) {
	n, err := s.changeNode(ctx, req.Msg.GetNodeId(), "cluster.node.drained", nil, s.opts.Nodes.DrainNode)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.DrainNodeResponse{Node: nodeProto(n)}), nil
}

// ActivateNode undoes DrainNode.
func (s *ClusterService) ActivateNode(ctx context.Context, req *connect.Request[clusterv1.ActivateNodeRequest]) (*connect.Response[clusterv1.ActivateNodeResponse], error) {
	n, err := s.changeNode(ctx, req.Msg.GetNodeId(), "cluster.node.activated", nil, s.opts.Nodes.ActivateNode)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.ActivateNodeResponse{Node: nodeProto(n)}), nil
}

// SetNodeLabels replaces the node's labels (on its swarm node too).
func (s *ClusterService) SetNodeLabels(ctx context.Context, req *connect.Request[clusterv1.SetNodeLabelsRequest]) (*connect.Response[clusterv1.SetNodeLabelsResponse], error) {
	labels := req.Msg.GetLabels()
	meta := map[string]string{}
	for k, v := range labels {
		meta["label."+k] = v
	}
	n, err := s.changeNode(ctx, req.Msg.GetNodeId(), "cluster.node.labels_set", meta,
		func(ctx context.Context, q *store.Queries, id uuid.UUID) (store.Node, error) {
			return s.opts.Nodes.SetNodeLabels(ctx, q, id, labels)
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.SetNodeLabelsResponse{Node: nodeProto(n)}), nil
}

// RemoveNode starts the removal: drain, leave the swarm, removal from the swarm's node list,
// certificate revoked and session closed. The node is removing until the agents are done
// (removed at once if it never joined the swarm).
func (s *ClusterService) RemoveNode(ctx context.Context, req *connect.Request[clusterv1.RemoveNodeRequest]) (*connect.Response[clusterv1.RemoveNodeResponse], error) {
	n, err := s.changeNode(ctx, req.Msg.GetNodeId(), "cluster.node.removed", nil, s.opts.Nodes.RemoveNode)
	if err != nil {
		return nil, err
	}
	if n.State == store.NodeRemoved {
		s.opts.Nodes.Close(n.ID)
	}
	return connect.NewResponse(&clusterv1.RemoveNodeResponse{Node: nodeProto(n)}), nil
}

// changeNode runs one of the node manager's changes and records it in the activity log, in
// one transaction.
func (s *ClusterService) changeNode(ctx context.Context, rawID, eventType string, meta map[string]string,
	change func(context.Context, *store.Queries, uuid.UUID) (store.Node, error)) (store.Node, error) {
	id := uuid.MustParse(rawID) // validated as a UUID by the schema
	var n store.Node
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if n, err = change(ctx, q, id); err != nil {
			return nodeErr(err)
		}
		m := map[string]string{"cluster_id": n.ClusterID.String(), "hostname": n.Hostname}
		for k, v := range meta {
			m[k] = v
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, eventType, "node", id.String(), m))
		return err
	})
	return n, err
}

// nodeErr maps the node manager's refusals to Connect codes.
func nodeErr(err error) error {
	for _, refusal := range []error{nodes.ErrNotJoined, nodes.ErrNoManager, nodes.ErrLastManager, nodes.ErrRemoving} {
		if errors.Is(err, refusal) {
			return failedPrecondition("%s", refusal.Error())
		}
	}
	return storeErr("node", err)
}

// GetNodeMetrics returns the node's metrics over a range at a step.
func (s *ClusterService) GetNodeMetrics(ctx context.Context, req *connect.Request[clusterv1.GetNodeMetricsRequest]) (*connect.Response[clusterv1.GetNodeMetricsResponse], error) {
	id := uuid.MustParse(req.Msg.GetNodeId())
	if _, err := s.opts.Store.NodeByID(ctx, id); err != nil {
		return nil, storeErr("node", err)
	}
	mq := nodes.MetricsQuery{NodeID: id, Names: req.Msg.GetNames()}
	if t := req.Msg.GetSince(); t != nil {
		mq.Since = t.AsTime()
	}
	if t := req.Msg.GetUntil(); t != nil {
		mq.Until = t.AsTime()
	}
	if d := req.Msg.GetStep(); d != nil {
		if mq.Step = d.AsDuration(); mq.Step <= 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("step: must be positive"))
		}
	}
	series, err := s.opts.Nodes.Metrics(ctx, mq)
	if errors.Is(err, nodes.ErrInvalidMetricsQuery) {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	} else if err != nil {
		return nil, storeErr("node metrics", err)
	}
	out := &clusterv1.GetNodeMetricsResponse{}
	for _, sr := range series {
		ms := &clusterv1.MetricSeries{Name: sr.Name, Points: make([]*clusterv1.MetricPoint, len(sr.Points))}
		for i, p := range sr.Points {
			ms.Points[i] = &clusterv1.MetricPoint{At: ts(p.At), Value: p.Value}
		}
		out.Series = append(out.Series, ms)
	}
	return connect.NewResponse(out), nil
}

var nodeStates = map[string]clusterv1.NodeState{
	store.NodeEnrolling:   clusterv1.NodeState_NODE_STATE_ENROLLING,
	store.NodeReady:       clusterv1.NodeState_NODE_STATE_READY,
	store.NodeDown:        clusterv1.NodeState_NODE_STATE_DOWN,
	store.NodeUnreachable: clusterv1.NodeState_NODE_STATE_UNREACHABLE,
	store.NodeDraining:    clusterv1.NodeState_NODE_STATE_DRAINING,
	store.NodeRemoving:    clusterv1.NodeState_NODE_STATE_REMOVING,
	store.NodeRemoved:     clusterv1.NodeState_NODE_STATE_REMOVED,
}

func nodeProto(n store.Node) *clusterv1.Node {
	out := &clusterv1.Node{
		Id: n.ID.String(), ClusterId: n.ClusterID.String(), Hostname: n.Hostname, Role: agentv1.NodeRole(n.Role),
		State: nodeStates[n.State], Labels: n.Labels, AdvertiseAddr: n.AdvertiseAddr, SwarmNodeId: n.SwarmNodeID,
		Availability: n.Availability, Os: n.OS, Kernel: n.Kernel, Arch: n.Arch, Cpus: n.CPUs, MemoryBytes: n.MemoryBytes,
		DockerVersion: n.DockerVersion, AgentVersion: n.AgentVersion, LastSeenAt: tsPtr(n.LastSeenAt),
		EnrolledAt: ts(n.EnrolledAt), CertificateExpiresAt: tsPtr(n.CertificateExpiresAt),
	}
	for _, id := range n.UnreachableFrom {
		out.UnreachableFrom = append(out.UnreachableFrom, id.String())
	}
	if len(n.LastReport) > 0 {
		if r, err := nodes.DecodeReport(n.LastReport); err == nil {
			out.Last = r.GetHost()
		}
	}
	return out
}
