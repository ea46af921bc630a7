package nodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// nodeView is the freshest that this replica knows of a node: the later of its in-memory
// last-seen time and the one written to the database (perhaps by another replica), and what
// the report that goes with it says of the node's peers.
type nodeView struct {
	node  *store.Node // in Manager.liveNodes: valid until the next pass
	seen  time.Time
	peers *store.NodePeers // from the node's latest reports; nil when none is known
}

// healthyState is the state of a node that reports: enrolling until it is in the swarm,
// draining while the admin wants it drained, ready otherwise.
func healthyState(n store.Node) string {
	switch {
	case !n.Joined():
		return store.NodeEnrolling
	case n.Availability == "drain":
		return store.NodeDraining
	}
	return store.NodeReady
}

// CheckHealth evaluates every node once. A node with no report for NodeTTL plus NodeGrace is
// down, or unreachable while the fresh report of a peer in its cluster lists it as reachable;
// a node that reports again is healthy again. Transitions raise alerts (node.down,
// node.unreachable, node.recovered) at most once per cooldown per node and kind. It also
// records which peers' gossip calls each node dead (nodes.unreachable_from), and finishes the
// removal of nodes that went away before they could leave the swarm.
func (m *Manager) CheckHealth(ctx context.Context) error {
	m.healthPass.Lock()
	defer m.healthPass.Unlock()
	nodes, err := m.store.LiveNodes(ctx, m.liveNodes)
	if err != nil {
		return fmt.Errorf("check health: %w", err)
	}
	m.liveNodes = nodes
	now := m.now()
	limit := m.opts.NodeTTL + m.opts.NodeGrace
	views := make(map[uuid.UUID]*nodeView, len(nodes))
	all := make([]nodeView, len(nodes)) // one allocation for thousands of nodes
	m.mu.Lock()
	for i := range nodes {
		n := &nodes[i]
		v := &all[i]
		v.node = n
		var dbSeen time.Time
		if n.LastSeenAt != nil {
			dbSeen = *n.LastSeenAt
		}
		v.seen = dbSeen
		if ln := m.live[n.ID]; ln != nil {
			v.seen = later(ln.seen, dbSeen)
			if ln.peers != nil && !ln.seen.Before(dbSeen) {
				v.peers = ln.peers
			}
		}
		views[n.ID] = v
	}
	m.mu.Unlock()
	fresh := func(v *nodeView) bool { return !v.seen.IsZero() && now.Sub(v.seen) <= limit }

	// What the nodes' peers say about them, from the peers' fresh reports: those this replica
	// holds, else the stored ones (after a restart, or of nodes reporting to another replica).
	var missing []uuid.UUID
	for _, p := range views {
		if fresh(p) && p.peers == nil {
			missing = append(missing, p.node.ID)
		}
	}
	if len(missing) > 0 {
		stored, err := m.store.NodePeerLists(ctx, missing)
		if err != nil {
			return fmt.Errorf("check health: %w", err)
		}
		for id, p := range stored {
			views[id].peers = p
		}
	}
	reachable := map[uuid.UUID]bool{}
	unreachableFrom := map[uuid.UUID][]uuid.UUID{}
	for _, p := range views {
		if !fresh(p) || p.peers == nil {
			continue
		}
		for _, id := range p.peers.Reachable {
			if v, ok := views[id]; ok && v.node.ClusterID == p.node.ClusterID && id != p.node.ID {
				reachable[id] = true
			}
		}
		for _, id := range p.peers.Unreachable {
			if v, ok := views[id]; ok && v.node.ClusterID == p.node.ClusterID && id != p.node.ID {
				unreachableFrom[id] = append(unreachableFrom[id], p.node.ID)
			}
		}
	}

	states := make(map[uuid.UUID]string, len(views))
	var errs []error
	for _, v := range views {
		n := *v.node
		states[n.ID] = n.State
		if n.State == store.NodeRemoving {
			continue
		}
		want := n.State
		switch {
		case v.seen.IsZero():
			// Never heard from: still enrolling.
		case fresh(v):
			want = healthyState(n)
		case reachable[n.ID]:
			want = store.NodeUnreachable
		default:
			want = store.NodeDown
		}
		from := unreachableFrom[n.ID]
		slices.SortFunc(from, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		if want == n.State && sameIDs(from, n.UnreachableFrom) {
			continue
		}
		if err := m.transition(ctx, n, want, from); err != nil {
			errs = append(errs, err)
			continue
		}
		states[n.ID] = want
	}
	m.mu.Lock()
	m.states = states
	// Forget what is known of removed nodes, and alerts past their cooldown.
	for id, ln := range m.live {
		if _, ok := views[id]; !ok && now.Sub(ln.seen) > limit {
			delete(m.live, id)
		}
	}
	for k, at := range m.alerted {
		if now.Sub(at) > m.opts.AlertCooldown {
			delete(m.alerted, k)
		}
	}
	m.mu.Unlock()

	if err := m.giveUpLeaves(ctx, views, fresh); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// transition moves a node to state want and records the peers that cannot reach it, with the
// alert the change deserves, in one transaction. A replica that loses the race to another
// one's health pass changes nothing.
func (m *Manager) transition(ctx context.Context, n store.Node, want string, unreachableFrom []uuid.UUID) error {
	return m.store.InTx(ctx, func(q *store.Queries) error {
		changed := false
		if want != n.State {
			moved, err := q.SetNodeState(ctx, n.ID, want, n.State)
			if err != nil {
				return fmt.Errorf("set node %s %s: %w", n.ID, want, err)
			}
			if moved {
				changed = true
				m.logger.Info("node health changed", "node_id", n.ID.String(), "from", n.State, "to", want)
				if event := alertFor(n.State, want); event != "" {
					meta := map[string]string{"hostname": n.Hostname, "cluster_id": n.ClusterID.String(), "from": n.State}
					if _, err := m.alert(ctx, q, n.ID, event, meta); err != nil {
						return err
					}
				}
			}
		}
		if !sameIDs(unreachableFrom, n.UnreachableFrom) {
			if err := q.SetNodeUnreachableFrom(ctx, n.ID, unreachableFrom); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			return q.NotifyNodesChanged(ctx, n.ClusterID)
		}
		return nil
	})
}

// alertFor names the alert a health transition raises, if any.
func alertFor(from, to string) string {
	silent := func(s string) bool { return s == store.NodeDown || s == store.NodeUnreachable }
	switch {
	case to == store.NodeDown:
		return "node.down"
	case to == store.NodeUnreachable:
		return "node.unreachable"
	case silent(from) && !silent(to):
		return "node.recovered"
	}
	return ""
}

// giveUpLeaves finishes removals stuck on a node that went away: a swarm_leave left
// unanswered for longer than the node may be silent, by a node not heard from in that time,
// is acknowledged as failed, and the removal goes on (a manager removes the node from the
// swarm by force).
func (m *Manager) giveUpLeaves(ctx context.Context, views map[uuid.UUID]*nodeView, fresh func(*nodeView) bool) error {
	limit := m.opts.NodeTTL + m.opts.NodeGrace
	rows, err := m.store.OpenNodeCommandsOlderThan(ctx, KindSwarmLeave, m.now().Add(-limit))
	if err != nil {
		return fmt.Errorf("find unanswered swarm leaves: %w", err)
	}
	for _, row := range rows {
		if v, ok := views[row.NodeID]; !ok || fresh(v) {
			continue
		}
		m.logger.Warn("node did not leave the swarm; removing it by force", "node_id", row.NodeID.String())
		err := m.ack(ctx, row.NodeID, row.Seq, false,
			fmt.Sprintf("the node did not answer within %s; removed from the swarm by force", limit), "")
		if err != nil {
			return fmt.Errorf("give up on swarm leave of node %s: %w", row.NodeID, err)
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// noPeers stands for every report that names no peer (a node alone, or gossip not up yet).
var noPeers = &store.NodePeers{}

// reportPeers parses the peer lists a report names, once when the report comes rather than
// on every health pass; the health pass keeps them without the rest of the report.
func reportPeers(r *agentv1.ReportRequest) *store.NodePeers {
	if len(r.GetReachablePeers()) == 0 && len(r.GetUnreachablePeers()) == 0 {
		return noPeers
	}
	return &store.NodePeers{Reachable: peerIDs(r.GetReachablePeers()), Unreachable: peerIDs(r.GetUnreachablePeers())}
}

// peerIDs parses node ids from a report, skipping malformed ones.
func peerIDs(ids []string) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	for _, s := range ids {
		if id, err := uuid.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// sameIDs compares two sets of ids.
func sameIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}
