package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Ports of a cluster's swarm and gossip.
const (
	SwarmPort  = 2377
	GossipPort = 7947
)

// swarmListenAddr is where swarm managers listen for the cluster's control traffic.
var swarmListenAddr = "0.0.0.0:" + strconv.Itoa(SwarmPort)

// GossipKeyContext binds a cluster's sealed gossip key (clusters.gossip_key_sealed).
func GossipKeyContext(clusterID uuid.UUID) string { return "gossip:" + clusterID.String() }

// JoinTokenContext binds a cluster's sealed swarm join token for role ("manager" or "worker").
func JoinTokenContext(clusterID uuid.UUID, role string) string {
	return "swarm-join-token:" + role + ":" + clusterID.String()
}

// GossipLabel separates one cluster's gossip from another's.
func GossipLabel(clusterID uuid.UUID) string { return "skypanel-" + clusterID.String() }

// swarmInitOutput is what an agent acknowledges swarm_init with.
type swarmInitOutput struct {
	SwarmID          string `json:"swarm_id"`
	SwarmNodeID      string `json:"swarm_node_id"`
	ManagerJoinToken string `json:"manager_join_token"`
	WorkerJoinToken  string `json:"worker_join_token"`
}

// swarmJoinOutput is what an agent acknowledges swarm_join with.
type swarmJoinOutput struct {
	SwarmNodeID string `json:"swarm_node_id"`
}

// connected moves a node along its lifecycle when its session starts: it takes the agent's
// word that it finished every command up to afterSeq, then queues what the node needs next.
// Other replicas hear of the new session and close an older one of the node.
//
// Most connects change nothing (a worker waiting for its cluster's swarm, say): one query
// tells so, and the node's and cluster's rows are left unlocked, so that many agents
// connecting at once (after a control-plane restart) do not queue behind one another.
func (m *Manager) connected(ctx context.Context, nodeID uuid.UUID, afterSeq int64) error {
	m.touch(nodeID, uuid.Nil)
	f, err := m.store.NodeConnectFacts(ctx, nodeID, afterSeq)
	if err != nil {
		return fmt.Errorf("load node: %w", err)
	}
	if f.Removed {
		return ErrNodeRemoved
	}
	m.touch(nodeID, f.ClusterID)
	if err := m.announceSession(ctx, nodeID); err != nil {
		return fmt.Errorf("announce session: %w", err)
	}
	if !f.OpenThrough && nothingToReconcile(f) {
		return nil
	}
	return m.connectedLocked(ctx, nodeID, afterSeq)
}

// nothingToReconcile reports whether reconcile would do nothing for a node in this state: a
// node being removed, or a worker outside the swarm of a cluster that is not active. (When the
// cluster becomes active, its activation queues swarm_join for every enrolled node outside
// the swarm, this one included, under the cluster's lock.)
func nothingToReconcile(f store.NodeConnectFacts) bool {
	return f.Removing || (!f.Joined && f.Role != store.RoleManagerNode && f.ClusterState != "active")
}

// connectedLocked is connected for a node whose connect may change something: the
// acknowledgements and the next steps are decided with the node's row locked.
func (m *Manager) connectedLocked(ctx context.Context, nodeID uuid.UUID, afterSeq int64) error {
	var closeNodes []uuid.UUID
	err := m.store.InTx(ctx, func(q *store.Queries) error {
		closeNodes = nil
		n, err := q.LockNode(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("load node: %w", err)
		}
		if n.RemovedAt != nil {
			return ErrNodeRemoved
		}
		if afterSeq > 0 {
			done, err := q.AckNodeCommandsThrough(ctx, nodeID, afterSeq)
			if err != nil {
				return fmt.Errorf("acknowledge through %d: %w", afterSeq, err)
			}
			if len(done) > 0 {
				if err := q.NotifyNodeCommands(ctx, nodeID, ackedNotice); err != nil {
					return err
				}
			}
			for _, row := range done {
				closed, err := m.applyAck(ctx, q, n, row)
				if err != nil {
					return err
				}
				closeNodes = append(closeNodes, closed...)
				if n, err = q.LockNode(ctx, nodeID); err != nil {
					return err
				}
			}
		}
		if err := m.reconcile(ctx, q, n); err != nil {
			return err
		}
		// Watchers see the node come online with its next written report; its lifecycle
		// changes (a new swarm, say) they see now.
		return q.NotifyNodesChanged(ctx, n.ClusterID)
	})
	for _, id := range closeNodes {
		m.Close(id)
	}
	return err
}

// reconcile queues what a node needs next on its way into the swarm: swarm_init for the first
// manager of a pending cluster (again if the last one ended without an answer), swarm_join
// once the cluster is active, and the gossip configuration once it is in.
func (m *Manager) reconcile(ctx context.Context, q *store.Queries, n store.Node) error {
	if n.State == store.NodeRemoving || n.RemovedAt != nil {
		return nil
	}
	c, err := q.LockClusterSwarm(ctx, n.ClusterID)
	if err != nil {
		return fmt.Errorf("lock cluster: %w", err)
	}
	if n.Joined() {
		return m.syncGossip(ctx, q, c)
	}
	switch c.State {
	case "pending", "error":
		if n.Role == store.RoleManagerNode {
			return m.queueSwarmInit(ctx, q, n, c)
		}
	case "initializing":
		latest, err := q.LatestNodeCommands(ctx, []uuid.UUID{n.ID}, KindSwarmInit)
		if err != nil {
			return err
		}
		// This node was making the swarm and its command ended without an answer (its
		// acknowledgement was lost): swarm init is idempotent on the node, so ask again.
		if row, ok := latest[n.ID]; ok && row.AckedAt != nil && row.OK == nil {
			return m.queueSwarmInit(ctx, q, n, c)
		}
	case "active":
		return m.queueSwarmJoin(ctx, q, n, c)
	}
	return nil
}

func (m *Manager) queueSwarmInit(ctx context.Context, q *store.Queries, n store.Node, c store.ClusterSwarm) error {
	if open, err := q.HasOpenNodeCommand(ctx, n.ID, KindSwarmInit); err != nil || open {
		return err
	}
	if _, err := enqueue(ctx, q, n.ID, &agentv1.Command{Kind: &agentv1.Command_SwarmInit{SwarmInit: &agentv1.SwarmInit{
		AdvertiseAddr: n.AdvertiseAddr, ListenAddr: swarmListenAddr,
	}}}); err != nil {
		return err
	}
	if err := q.SetClusterSwarmState(ctx, c.ID, "initializing", ""); err != nil {
		return fmt.Errorf("cluster initializing: %w", err)
	}
	m.logger.Info("queued swarm init", "cluster_id", c.ID.String(), "node_id", n.ID.String())
	return q.NotifyNodesChanged(ctx, c.ID)
}

// queueSwarmJoin queues swarm_join for a node of an active cluster, unless one is open.
func (m *Manager) queueSwarmJoin(ctx context.Context, q *store.Queries, n store.Node, c store.ClusterSwarm) error {
	if open, err := q.HasOpenNodeCommand(ctx, n.ID, KindSwarmJoin); err != nil || open {
		return err
	}
	role, sealed := "worker", c.WorkerJoinTokenSealed
	if n.Role == store.RoleManagerNode {
		role, sealed = "manager", c.ManagerJoinTokenSealed
	}
	token, err := m.opts.Keyring.Open(sealed, JoinTokenContext(c.ID, role))
	if err != nil {
		return fmt.Errorf("open the %s join token of cluster %s: %w", role, c.ID, err)
	}
	nodes, err := q.ClusterNodes(ctx, c.ID)
	if err != nil {
		return err
	}
	var ready, joined []string
	for _, peer := range nodes {
		if peer.ID == n.ID || peer.Role != store.RoleManagerNode || !peer.Joined() || peer.AdvertiseAddr == "" ||
			peer.State == store.NodeRemoving {
			continue
		}
		addr := net.JoinHostPort(hostOf(peer.AdvertiseAddr), strconv.Itoa(SwarmPort))
		joined = append(joined, addr)
		if peer.State == store.NodeReady || peer.State == store.NodeDraining {
			ready = append(ready, addr)
		}
	}
	if len(ready) == 0 {
		ready = joined // none is healthy right now; one may be by the time the agent tries
	}
	if len(ready) == 0 {
		m.logger.Warn("no manager to join through", "cluster_id", c.ID.String(), "node_id", n.ID.String())
		return nil
	}
	if _, err := enqueue(ctx, q, n.ID, &agentv1.Command{Kind: &agentv1.Command_SwarmJoin{SwarmJoin: &agentv1.SwarmJoin{
		RemoteAddrs: ready, JoinToken: string(token), AdvertiseAddr: n.AdvertiseAddr, ListenAddr: swarmListenAddr,
	}}}); err != nil {
		return err
	}
	m.logger.Info("queued swarm join", "cluster_id", c.ID.String(), "node_id", n.ID.String(), "role", role)
	return nil
}

// hostOf strips a port from an advertise address, if it has one.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// syncGossip sends gossip_config to every member of the cluster (joined, not leaving) whose
// newest one names other peers than it should have now.
func (m *Manager) syncGossip(ctx context.Context, q *store.Queries, c store.ClusterSwarm) error {
	nodes, err := q.ClusterNodes(ctx, c.ID)
	if err != nil {
		return err
	}
	var members []store.Node
	for _, n := range nodes {
		if n.Joined() && n.State != store.NodeRemoving {
			members = append(members, n)
		}
	}
	if len(members) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(members))
	for i, n := range members {
		ids[i] = n.ID
	}
	latest, err := q.LatestNodeCommands(ctx, ids, KindGossipConfig)
	if err != nil {
		return err
	}
	var key []byte
	for _, n := range members {
		var peers []string
		for _, p := range members {
			if p.ID != n.ID && p.AdvertiseAddr != "" {
				peers = append(peers, net.JoinHostPort(hostOf(p.AdvertiseAddr), strconv.Itoa(GossipPort)))
			}
		}
		slices.Sort(peers)
		if row, ok := latest[n.ID]; ok {
			prev, err := decodeCommand(row)
			if err == nil && slices.Equal(prev.GetGossipConfig().GetPeers(), peers) {
				continue
			}
		}
		if key == nil {
			if key, err = m.opts.Keyring.Open(c.GossipKeySealed, GossipKeyContext(c.ID)); err != nil {
				return fmt.Errorf("open the gossip key of cluster %s: %w", c.ID, err)
			}
		}
		if _, err := enqueue(ctx, q, n.ID, &agentv1.Command{Kind: &agentv1.Command_GossipConfig{GossipConfig: &agentv1.GossipConfig{
			Key: key, Label: GossipLabel(c.ID), Peers: peers, Port: GossipPort,
		}}}); err != nil {
			return err
		}
	}
	return nil
}

// pickManager chooses the joined manager of a cluster, other than except, that should carry
// out a swarm change: a ready one if there is one, else any that is still a member (the
// command waits in its outbox). ErrNoManager when there is none.
func pickManager(ctx context.Context, q *store.Queries, clusterID, except uuid.UUID) (store.Node, error) {
	nodes, err := q.ClusterNodes(ctx, clusterID)
	if err != nil {
		return store.Node{}, err
	}
	var fallback *store.Node
	for i, n := range nodes {
		if n.ID == except || n.Role != store.RoleManagerNode || !n.Joined() || n.State == store.NodeRemoving {
			continue
		}
		if n.State == store.NodeReady || n.State == store.NodeDraining {
			return n, nil
		}
		if fallback == nil {
			fallback = &nodes[i]
		}
	}
	if fallback == nil {
		return store.Node{}, ErrNoManager
	}
	return *fallback, nil
}

// queueLabels applies a node's labels to its swarm node through a manager.
func queueLabels(ctx context.Context, q *store.Queries, n store.Node) error {
	if len(n.Labels) == 0 {
		return nil
	}
	mgr, err := pickManager(ctx, q, n.ClusterID, uuid.Nil)
	if err != nil {
		return err
	}
	_, err = enqueue(ctx, q, mgr.ID, &agentv1.Command{Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{
		SwarmNodeId: n.SwarmNodeID, Labels: n.Labels,
	}}})
	return err
}

// applyAck carries out what an acknowledged command means for the cluster lifecycle. n is the
// node that acknowledged, locked. It returns nodes whose sessions must close after commit.
// row.OK is nil when the outcome is unknown (acknowledged only by a later sequence).
func (m *Manager) applyAck(ctx context.Context, q *store.Queries, n store.Node, row store.NodeCommand) ([]uuid.UUID, error) {
	cmd, err := decodeCommand(row)
	if err != nil {
		return nil, err
	}
	ok := row.OK != nil && *row.OK
	failed := row.OK != nil && !*row.OK
	logger := m.logger.With("node_id", n.ID.String(), "seq", row.Seq, "kind", row.Kind)
	if failed {
		logger.Warn("node command failed", "error", row.Error)
	}
	switch row.Kind {
	case KindSwarmInit:
		c, err := q.LockClusterSwarm(ctx, n.ClusterID)
		if err != nil {
			return nil, err
		}
		if failed {
			if c.State == "initializing" {
				if err := q.SetClusterSwarmState(ctx, c.ID, "error", "swarm init failed: "+row.Error); err != nil {
					return nil, err
				}
			}
			return nil, q.NotifyNodesChanged(ctx, c.ID)
		}
		if !ok {
			return nil, nil // reconcile asks again on the next connect
		}
		var out swarmInitOutput
		if err := json.Unmarshal([]byte(row.Output), &out); err != nil || out.SwarmID == "" || out.SwarmNodeID == "" ||
			out.ManagerJoinToken == "" || out.WorkerJoinToken == "" {
			logger.Warn("swarm init acknowledged without its output")
			return nil, q.SetClusterSwarmState(ctx, c.ID, "error", "swarm init answered without the swarm's id and join tokens")
		}
		if c.State == "active" && c.SwarmID != out.SwarmID {
			logger.Warn("swarm init made a second swarm; keeping the first", "swarm_id", out.SwarmID, "kept", c.SwarmID)
			return nil, nil
		}
		if err := q.ActivateClusterSwarm(ctx, c.ID, out.SwarmID,
			m.opts.Keyring.Seal([]byte(out.ManagerJoinToken), JoinTokenContext(c.ID, "manager")),
			m.opts.Keyring.Seal([]byte(out.WorkerJoinToken), JoinTokenContext(c.ID, "worker"))); err != nil {
			return nil, err
		}
		logger.Info("cluster active", "cluster_id", c.ID.String(), "swarm_id", out.SwarmID)
		return nil, m.joined(ctx, q, n, out.SwarmNodeID)

	case KindSwarmJoin:
		if !ok {
			return nil, nil // the node's next connect queues another join
		}
		var out swarmJoinOutput
		if err := json.Unmarshal([]byte(row.Output), &out); err != nil || out.SwarmNodeID == "" {
			logger.Warn("swarm join acknowledged without the swarm node id")
			return nil, nil
		}
		return nil, m.joined(ctx, q, n, out.SwarmNodeID)

	case KindSwarmLeave:
		if n.State != store.NodeRemoving {
			return nil, nil
		}
		return m.afterLeave(ctx, q, n)

	case KindNodeUpdate, KindNodeRemove:
		swarmNodeID := cmd.GetNodeUpdate().GetSwarmNodeId() + cmd.GetNodeRemove().GetSwarmNodeId()
		target, err := q.NodeBySwarmID(ctx, n.ClusterID, swarmNodeID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		if target.State != store.NodeRemoving {
			return nil, nil
		}
		if row.Kind == KindNodeUpdate && cmd.GetNodeUpdate().GetAvailability() == "drain" {
			// Removal, step two: the node leaves the swarm.
			target, err = q.LockNode(ctx, target.ID)
			if err != nil {
				return nil, err
			}
			return nil, queueLeave(ctx, q, target)
		}
		if row.Kind == KindNodeRemove {
			// Removal, last step.
			target, err = q.LockNode(ctx, target.ID)
			if err != nil {
				return nil, err
			}
			return m.finishRemoval(ctx, q, target)
		}
	}
	return nil, nil
}

// joined records that n is in the swarm, then joins the nodes that waited for the swarm to
// exist, applies n's labels and brings everyone's gossip peers up to date.
func (m *Manager) joined(ctx context.Context, q *store.Queries, n store.Node, swarmNodeID string) error {
	if err := q.SetNodeJoined(ctx, n.ID, swarmNodeID); err != nil {
		return fmt.Errorf("record swarm node id: %w", err)
	}
	n.SwarmNodeID = swarmNodeID
	c, err := q.LockClusterSwarm(ctx, n.ClusterID)
	if err != nil {
		return err
	}
	nodes, err := q.ClusterNodes(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, w := range nodes {
		if w.ID != n.ID && !w.Joined() && w.State != store.NodeRemoving {
			if err := m.queueSwarmJoin(ctx, q, w, c); err != nil {
				return err
			}
		}
	}
	if err := queueLabels(ctx, q, n); err != nil && !errors.Is(err, ErrNoManager) {
		return err
	}
	if err := m.syncGossip(ctx, q, c); err != nil {
		return err
	}
	return q.NotifyNodesChanged(ctx, c.ID)
}

// queueLeave makes a node being removed leave the swarm (forcefully for a manager, which
// otherwise may not leave).
func queueLeave(ctx context.Context, q *store.Queries, n store.Node) error {
	_, err := enqueue(ctx, q, n.ID, &agentv1.Command{Kind: &agentv1.Command_SwarmLeave{SwarmLeave: &agentv1.SwarmLeave{
		Force: n.Role == store.RoleManagerNode,
	}}})
	return err
}

// afterLeave continues a removal once the node left the swarm (or was given up on): a
// manager removes it from the swarm's node list; with no manager left there is no list.
func (m *Manager) afterLeave(ctx context.Context, q *store.Queries, n store.Node) ([]uuid.UUID, error) {
	mgr, err := pickManager(ctx, q, n.ClusterID, n.ID)
	if errors.Is(err, ErrNoManager) {
		return m.finishRemoval(ctx, q, n)
	} else if err != nil {
		return nil, err
	}
	_, err = enqueue(ctx, q, mgr.ID, &agentv1.Command{Kind: &agentv1.Command_NodeRemove{NodeRemove: &agentv1.NodeRemove{
		SwarmNodeId: n.SwarmNodeID, Force: true,
	}}})
	return nil, err
}

// finishRemoval ends a node: removed, certificates revoked, sessions on every replica told to
// close, the remaining members' gossip peers updated. A cluster left without members goes
// back to pending, ready for a new first manager.
func (m *Manager) finishRemoval(ctx context.Context, q *store.Queries, n store.Node) ([]uuid.UUID, error) {
	if err := q.MarkNodeRemoved(ctx, n.ID); err != nil {
		return nil, fmt.Errorf("mark node removed: %w", err)
	}
	if _, err := q.RevokeNodeCertificates(ctx, n.ID); err != nil {
		return nil, fmt.Errorf("revoke node certificates: %w", err)
	}
	if err := q.NotifyNodeCommands(ctx, n.ID, ""); err != nil {
		return nil, err
	}
	c, err := q.LockClusterSwarm(ctx, n.ClusterID)
	if err != nil {
		return nil, err
	}
	nodes, err := q.ClusterNodes(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	members := 0
	for _, p := range nodes {
		if p.Joined() {
			members++
		}
	}
	if members == 0 {
		if err := q.ResetClusterSwarm(ctx, c.ID); err != nil {
			return nil, err
		}
	} else if err := m.syncGossip(ctx, q, c); err != nil {
		return nil, err
	}
	m.logger.Info("node removed", "node_id", n.ID.String(), "cluster_id", c.ID.String())
	return []uuid.UUID{n.ID}, q.NotifyNodesChanged(ctx, c.ID)
}

// Ack records the outcome of a node's command. Acknowledging a sequence acknowledges every
// lower one; acknowledging one again is a no-op. The first acknowledgement moves the cluster
// lifecycle on (a finished swarm init activates the cluster, and so on).
func (m *Manager) Ack(ctx context.Context, nodeID uuid.UUID, seq int64, ok bool, errText, output string) error {
	m.touch(nodeID, uuid.Nil)
	return m.ack(ctx, nodeID, seq, ok, errText, output)
}

func (m *Manager) ack(ctx context.Context, nodeID uuid.UUID, seq int64, ok bool, errText, output string) error {
	var closeNodes []uuid.UUID
	err := m.store.InTx(ctx, func(q *store.Queries) error {
		closeNodes = nil
		n, err := q.LockNode(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("load node: %w", err)
		}
		row, first, err := q.AckNodeCommand(ctx, nodeID, seq, ok, errText, output)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownCommand
		} else if err != nil || !first {
			return err
		}
		// Lower commands still open finished too (the agent runs them in order); their own
		// acknowledgements were lost.
		earlier, err := q.AckNodeCommandsThrough(ctx, nodeID, seq-1)
		if err != nil {
			return err
		}
		if err := q.NotifyNodeCommands(ctx, nodeID, ackedNotice); err != nil {
			return err
		}
		for _, r := range append(earlier, row) {
			closed, err := m.applyAck(ctx, q, n, r)
			if err != nil {
				return err
			}
			closeNodes = append(closeNodes, closed...)
			if n, err = q.LockNode(ctx, nodeID); err != nil {
				return err
			}
		}
		return nil
	})
	for _, id := range closeNodes {
		m.Close(id)
	}
	return err
}
