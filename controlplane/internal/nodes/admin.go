package nodes

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// The admin's changes to a node run in the caller's transaction (which also records them in
// the activity log); the commands they queue reach the agents when it commits.

// lockLiveNode locks a node that is not removed (ErrNotFound otherwise) nor being removed
// (ErrRemoving).
func lockLiveNode(ctx context.Context, q *store.Queries, nodeID uuid.UUID) (store.Node, error) {
	n, err := q.LockNode(ctx, nodeID)
	if err != nil {
		return n, err
	}
	if n.RemovedAt != nil {
		return n, store.ErrNotFound
	}
	if n.State == store.NodeRemoving {
		return n, ErrRemoving
	}
	return n, nil
}

// DrainNode keeps new tasks off a node and moves its tasks elsewhere: a manager sets its swarm
// availability to drain. The node's state is draining while it is healthy.
func (m *Manager) DrainNode(ctx context.Context, q *store.Queries, nodeID uuid.UUID) (store.Node, error) {
	return m.setAvailability(ctx, q, nodeID, "drain")
}

// ActivateNode undoes DrainNode.
func (m *Manager) ActivateNode(ctx context.Context, q *store.Queries, nodeID uuid.UUID) (store.Node, error) {
	return m.setAvailability(ctx, q, nodeID, "active")
}

func (m *Manager) setAvailability(ctx context.Context, q *store.Queries, nodeID uuid.UUID, availability string) (store.Node, error) {
	n, err := lockLiveNode(ctx, q, nodeID)
	if err != nil {
		return n, err
	}
	if !n.Joined() {
		return n, ErrNotJoined
	}
	if err := m.updateSwarmNode(ctx, q, n, availability); err != nil {
		return n, err
	}
	n.Availability = availability
	if err := q.SetNodeAvailability(ctx, n.ID, availability, healthyState(n)); err != nil {
		return n, fmt.Errorf("set availability: %w", err)
	}
	if err := q.NotifyNodesChanged(ctx, n.ClusterID); err != nil {
		return n, err
	}
	return q.NodeByID(ctx, n.ID)
}

// updateSwarmNode asks a manager to set a swarm node's availability (empty: keep it) and
// labels. The labels sent are always the node's whole set: the agent replaces the swarm
// node's labels with them.
func (m *Manager) updateSwarmNode(ctx context.Context, q *store.Queries, n store.Node, availability string) error {
	mgr, err := pickManager(ctx, q, n.ClusterID, uuid.Nil)
	if err != nil {
		return err
	}
	_, err = enqueue(ctx, q, mgr.ID, &agentv1.Command{Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{
		SwarmNodeId: n.SwarmNodeID, Availability: availability, Labels: n.Labels,
	}}})
	return err
}

// SetNodeLabels replaces a node's labels; a node in the swarm gets them on its swarm node at
// once, one still joining when it joins.
func (m *Manager) SetNodeLabels(ctx context.Context, q *store.Queries, nodeID uuid.UUID, labels map[string]string) (store.Node, error) {
	n, err := lockLiveNode(ctx, q, nodeID)
	if err != nil {
		return n, err
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if err := q.SetNodeLabels(ctx, n.ID, labels); err != nil {
		return n, err
	}
	n.Labels = labels
	if n.Joined() {
		if err := m.updateSwarmNode(ctx, q, n, ""); err != nil {
			return n, err
		}
	}
	if err := q.NotifyNodesChanged(ctx, n.ClusterID); err != nil {
		return n, err
	}
	return q.NodeByID(ctx, n.ID)
}

// RemoveNode starts removing a node: a manager drains it, then the node leaves the swarm,
// then a manager removes it from the swarm's node list; then its certificates are revoked and
// its session closed. Each step is queued when the one before is acknowledged; a node that
// is gone is given up on after NodeTTL plus NodeGrace. A node not in the swarm is removed at
// once; call Close after the transaction commits when the returned node's state is removed.
// Removing a node being removed changes nothing.
func (m *Manager) RemoveNode(ctx context.Context, q *store.Queries, nodeID uuid.UUID) (store.Node, error) {
	n, err := lockLiveNode(ctx, q, nodeID)
	if errors.Is(err, ErrRemoving) {
		return n, nil
	} else if err != nil {
		return n, err
	}
	mgr, err := pickManager(ctx, q, n.ClusterID, n.ID)
	switch {
	case !n.Joined():
	case errors.Is(err, ErrNoManager):
		// The node is the swarm's only manager: fine if it is the last member too.
		nodes, err := q.ClusterNodes(ctx, n.ClusterID)
		if err != nil {
			return n, err
		}
		for _, p := range nodes {
			if p.ID != n.ID && p.Joined() {
				return n, ErrLastManager
			}
		}
	case err != nil:
		return n, err
	}
	if _, err := q.SetNodeState(ctx, n.ID, store.NodeRemoving); err != nil {
		return n, fmt.Errorf("mark node removing: %w", err)
	}
	n.State = store.NodeRemoving
	switch {
	case !n.Joined():
		if _, err := m.finishRemoval(ctx, q, n); err != nil {
			return n, err
		}
	case mgr.ID == uuid.Nil:
		if err := queueLeave(ctx, q, n); err != nil {
			return n, err
		}
	default:
		if _, err := enqueue(ctx, q, mgr.ID, &agentv1.Command{Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{
			SwarmNodeId: n.SwarmNodeID, Availability: "drain", Labels: n.Labels,
		}}}); err != nil {
			return n, err
		}
	}
	if err := q.NotifyNodesChanged(ctx, n.ClusterID); err != nil {
		return n, err
	}
	return q.NodeByID(ctx, n.ID)
}
