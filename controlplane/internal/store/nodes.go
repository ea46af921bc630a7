package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NodeChangesChannel is the Postgres NOTIFY channel that announces a change to a cluster's
// nodes (state, labels, lifecycle, the latest reports); the payload is the cluster id.
// WatchNodes streams listen to it.
const NodeChangesChannel = "skypanel_node_changes"

// Node states (the nodes.state column).
const (
	NodeEnrolling   = "enrolling"
	NodeReady       = "ready"
	NodeDown        = "down"
	NodeUnreachable = "unreachable"
	NodeDraining    = "draining"
	NodeRemoving    = "removing"
	NodeRemoved     = "removed"
)

// Node roles (the API's NodeRole numbers).
const (
	RoleManagerNode int16 = 1
	RoleWorkerNode  int16 = 2
)

// Node is a server in a cluster, as the nodes table holds it.
type Node struct {
	ID                uuid.UUID
	ClusterID         uuid.UUID
	Role              int16
	State             string
	Labels            map[string]string
	Hostname          string
	AdvertiseAddr     string
	OS                string
	Kernel            string
	Arch              string
	CPUs              int32
	MemoryBytes       int64
	DockerVersion     string
	AgentVersion      string
	SwarmNodeID       string
	Availability      string
	OverlayEncryption bool
	// LastReport is the latest heartbeat as the agent sent it (protobuf; nodes.DecodeReport
	// reads it), nil before one.
	LastReport      []byte
	LastSeenAt      *time.Time
	UnreachableFrom []uuid.UUID
	EnrolledAt      time.Time
	RemovedAt       *time.Time
	// CertificateExpiresAt is when the node's newest unrevoked certificate expires.
	CertificateExpiresAt *time.Time
}

// Joined reports whether the node is a member of its cluster's swarm.
func (n Node) Joined() bool { return n.SwarmNodeID != "" }

const nodeColumns = `n.id, n.cluster_id, n.role, n.state, n.labels, n.hostname, n.advertise_addr, n.os, n.kernel,
	n.arch, n.cpus, n.memory_bytes, n.docker_version, n.agent_version, n.swarm_node_id, n.availability,
	n.overlay_encryption, n.last_report, n.last_seen_at, n.unreachable_from, n.enrolled_at, n.removed_at,
	(SELECT max(c.expires_at) FROM node_certificates c WHERE c.node_id = n.id AND c.revoked_at IS NULL)`

func scanNode(row interface{ Scan(...any) error }) (Node, error) {
	var n Node
	var labels []byte
	err := row.Scan(&n.ID, &n.ClusterID, &n.Role, &n.State, &labels, &n.Hostname, &n.AdvertiseAddr, &n.OS,
		&n.Kernel, &n.Arch, &n.CPUs, &n.MemoryBytes, &n.DockerVersion, &n.AgentVersion, &n.SwarmNodeID,
		&n.Availability, &n.OverlayEncryption, &n.LastReport, &n.LastSeenAt, &n.UnreachableFrom, &n.EnrolledAt,
		&n.RemovedAt, &n.CertificateExpiresAt)
	if err != nil {
		return n, mapErr(err)
	}
	if err := json.Unmarshal(labels, &n.Labels); err != nil {
		return n, fmt.Errorf("node %s labels: %w", n.ID, err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	return n, nil
}

func (q *Queries) nodes(ctx context.Context, where string, args ...any) ([]Node, error) {
	rows, err := q.db.Query(ctx, `SELECT `+nodeColumns+` FROM nodes n WHERE `+where+` ORDER BY n.enrolled_at, n.id`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}

// NodeByID returns a node, removed ones too.
func (q *Queries) NodeByID(ctx context.Context, id uuid.UUID) (Node, error) {
	return scanNode(q.db.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes n WHERE n.id = $1`, id))
}

// NodeCluster returns the cluster of a node and whether the node was removed: the little a
// heartbeat needs, without the node's whole row.
func (q *Queries) NodeCluster(ctx context.Context, id uuid.UUID) (clusterID uuid.UUID, removed bool, err error) {
	err = q.db.QueryRow(ctx, `SELECT cluster_id, removed_at IS NOT NULL FROM nodes WHERE id = $1`, id).Scan(&clusterID, &removed)
	return clusterID, removed, mapErr(err)
}

// NodeConnectFacts is what a node's new session needs to tell whether connecting changes
// anything, read without locking.
type NodeConnectFacts struct {
	ClusterID uuid.UUID
	// ClusterState is the cluster's swarm state: pending, initializing, active or error.
	ClusterState string
	Role         int16
	Joined       bool
	Removing     bool
	Removed      bool
	// OpenThrough says whether the node has unacknowledged commands up to the sequence asked
	// about.
	OpenThrough bool
}

// NodeConnectFacts reads a node's NodeConnectFacts in one query; afterSeq is the sequence its
// agent resumes after.
func (q *Queries) NodeConnectFacts(ctx context.Context, id uuid.UUID, afterSeq int64) (NodeConnectFacts, error) {
	var f NodeConnectFacts
	err := q.db.QueryRow(ctx, `
		SELECT n.cluster_id, c.state, n.role, n.swarm_node_id <> '', n.state = 'removing', n.removed_at IS NOT NULL,
			EXISTS (SELECT 1 FROM node_commands x WHERE x.node_id = n.id AND x.seq <= $2 AND x.acked_at IS NULL)
		FROM nodes n JOIN clusters c ON c.id = n.cluster_id
		WHERE n.id = $1`, id, afterSeq).
		Scan(&f.ClusterID, &f.ClusterState, &f.Role, &f.Joined, &f.Removing, &f.Removed, &f.OpenThrough)
	return f, mapErr(err)
}

// LockNode returns a node and locks its row until the transaction ends, so lifecycle steps on
// one node happen one after another.
func (q *Queries) LockNode(ctx context.Context, id uuid.UUID) (Node, error) {
	return scanNode(q.db.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes n WHERE n.id = $1 FOR NO KEY UPDATE`, id))
}

// ClusterNodes lists a cluster's nodes that are not removed, oldest first.
func (q *Queries) ClusterNodes(ctx context.Context, clusterID uuid.UUID) ([]Node, error) {
	return q.nodes(ctx, `n.cluster_id = $1 AND n.removed_at IS NULL`, clusterID)
}

// ReadyManagers lists the cluster's managers that are ready and have joined its swarm.
func (q *Queries) ReadyManagers(ctx context.Context, clusterID uuid.UUID) ([]Node, error) {
	return q.nodes(ctx, `n.cluster_id = $1 AND n.removed_at IS NULL AND n.role = $2 AND n.state = $3
		AND n.swarm_node_id <> ''`, clusterID, RoleManagerNode, NodeReady)
}

// LabelledNodeIDs lists the cluster's nodes whose label has the value "true" that have
// joined its swarm and are neither removed nor being removed (the edges of a cluster: a
// few of what may be thousands of nodes, read without their rows).
func (q *Queries) LabelledNodeIDs(ctx context.Context, clusterID uuid.UUID, label string) ([]uuid.UUID, error) {
	rows, err := q.db.Query(ctx, `SELECT id FROM nodes WHERE cluster_id = $1 AND removed_at IS NULL
		AND state <> 'removing' AND swarm_node_id <> '' AND labels->>$2 = 'true' ORDER BY enrolled_at, id`, clusterID, label)
	if err != nil {
		return nil, fmt.Errorf("labelled nodes: %w", mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("labelled nodes: %w", mapErr(err))
	}
	return ids, nil
}

// LiveNodes lists every node of every cluster that is not removed, for the health pass that
// reads them every few seconds: only the fields it uses are filled (ID, ClusterID, State,
// Hostname, SwarmNodeID, Availability, LastSeenAt, UnreachableFrom), a fraction of a whole
// row to read and allocate for each of thousands of nodes. NodePeerLists reads their peer lists.
// The rows are appended to into[:0], a buffer the caller may pass again to the next call.
func (q *Queries) LiveNodes(ctx context.Context, into []Node) ([]Node, error) {
	rows, err := q.db.Query(ctx, `SELECT id, cluster_id, state, hostname, swarm_node_id, availability, last_seen_at,
		unreachable_from FROM nodes WHERE removed_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("live nodes: %w", mapErr(err))
	}
	defer rows.Close()
	out := into[:0]
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.ID, &n.ClusterID, &n.State, &n.Hostname, &n.SwarmNodeID, &n.Availability,
			&n.LastSeenAt, &n.UnreachableFrom); err != nil {
			return nil, fmt.Errorf("live nodes: %w", mapErr(err))
		}
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}

// NodePeers is what a node's reports say of its cluster peers' gossip: the ids of the peers
// it sees alive and of those it sees dead.
type NodePeers struct {
	Reachable, Unreachable []uuid.UUID
}

// NodePeerLists returns the stored peer lists of each of the nodes that has reported.
func (q *Queries) NodePeerLists(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*NodePeers, error) {
	rows, err := q.db.Query(ctx, `SELECT id, reachable_peers, unreachable_peers FROM nodes
		WHERE id = ANY($1) AND last_report IS NOT NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("node peer lists: %w", mapErr(err))
	}
	defer rows.Close()
	out := make(map[uuid.UUID]*NodePeers, len(ids))
	for rows.Next() {
		var id uuid.UUID
		p := &NodePeers{}
		if err := rows.Scan(&id, &p.Reachable, &p.Unreachable); err != nil {
			return nil, fmt.Errorf("node peer lists: %w", mapErr(err))
		}
		out[id] = p
	}
	return out, mapErr(rows.Err())
}

// NodeBySwarmID finds a cluster's node by its swarm node id.
func (q *Queries) NodeBySwarmID(ctx context.Context, clusterID uuid.UUID, swarmNodeID string) (Node, error) {
	return scanNode(q.db.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes n
		WHERE n.cluster_id = $1 AND n.swarm_node_id = $2 AND $2 <> '' ORDER BY n.enrolled_at DESC LIMIT 1`,
		clusterID, swarmNodeID))
}

// SetNodeState moves a node to state if it is in one of from (any state when from is empty).
// It reports whether the node changed; a false lets concurrent health loops of several
// replicas agree on who records a transition.
func (q *Queries) SetNodeState(ctx context.Context, id uuid.UUID, state string, from ...string) (bool, error) {
	if len(from) == 0 {
		from = nil
	}
	tag, err := q.db.Exec(ctx, `UPDATE nodes SET state = $2
		WHERE id = $1 AND state <> $2 AND ($3::text[] IS NULL OR state = ANY($3)) AND removed_at IS NULL`, id, state, from)
	return tag.RowsAffected() == 1, mapErr(err)
}

// SetNodeJoined records that a node joined its swarm as swarmNodeID, with availability
// active, and moves it from enrolling to ready.
func (q *Queries) SetNodeJoined(ctx context.Context, id uuid.UUID, swarmNodeID string) error {
	_, err := q.db.Exec(ctx, `UPDATE nodes SET swarm_node_id = $2,
			availability = CASE WHEN availability = '' THEN 'active' ELSE availability END,
			state = CASE WHEN state = 'enrolling' THEN 'ready' ELSE state END
		WHERE id = $1`, id, swarmNodeID)
	return mapErr(err)
}

// SetNodeAvailability sets what the admin wants of a node's availability ("active" or
// "drain"), and its state to match when it is healthy.
func (q *Queries) SetNodeAvailability(ctx context.Context, id uuid.UUID, availability, healthyState string) error {
	_, err := q.db.Exec(ctx, `UPDATE nodes SET availability = $2,
			state = CASE WHEN state IN ('ready', 'draining') THEN $3 ELSE state END
		WHERE id = $1`, id, availability, healthyState)
	return mapErr(err)
}

// SetNodeLabels replaces a node's labels.
func (q *Queries) SetNodeLabels(ctx context.Context, id uuid.UUID, labels map[string]string) error {
	if labels == nil {
		labels = map[string]string{}
	}
	raw, err := json.Marshal(labels)
	if err != nil {
		return fmt.Errorf("set node labels: %w", err)
	}
	_, err = q.db.Exec(ctx, `UPDATE nodes SET labels = $2 WHERE id = $1`, id, raw)
	return mapErr(err)
}

// MarkNodeRemoved ends a node's life: state removed, removed_at now, its swarm identity gone.
// It announces on NodeStandingChannel that the node's certificates are no longer good (on
// commit inside a transaction).
func (q *Queries) MarkNodeRemoved(ctx context.Context, id uuid.UUID) error {
	_, err := q.db.Exec(ctx, `UPDATE nodes SET state = 'removed', removed_at = now(), unreachable_from = '{}'
		WHERE id = $1 AND removed_at IS NULL`, id)
	if err != nil {
		return mapErr(err)
	}
	return q.notifyNodeStanding(ctx, id)
}

// SetNodeUnreachableFrom records which peers' gossip says the node is dead.
func (q *Queries) SetNodeUnreachableFrom(ctx context.Context, id uuid.UUID, peers []uuid.UUID) error {
	if peers == nil {
		peers = []uuid.UUID{}
	}
	_, err := q.db.Exec(ctx, `UPDATE nodes SET unreachable_from = $2 WHERE id = $1`, id, peers)
	return mapErr(err)
}

// NodeReportWrite is one node's latest heartbeat, written in a batch.
type NodeReportWrite struct {
	NodeID    uuid.UUID
	ClusterID uuid.UUID
	// Report is the heartbeat as the agent sent it (protobuf).
	Report            []byte
	SeenAt            time.Time
	OverlayEncryption bool
	// Peers are the node's peer lists when they changed; nil leaves the stored ones.
	Peers *NodePeers
}

// WriteNodeReports stores the latest heartbeat of several nodes in one statement and returns
// the ids of the nodes it wrote. Rows another transaction has locked (a lifecycle step of the
// node) are skipped rather than waited for, so a batch never takes part in a deadlock; the
// caller writes those next time. A write never moves last_seen_at back (another replica may
// have written a newer one).
func (q *Queries) WriteNodeReports(ctx context.Context, writes []NodeReportWrite) ([]uuid.UUID, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(writes))
	reports := make([][]byte, len(writes))
	seen := make([]time.Time, len(writes))
	overlay := make([]bool, len(writes))
	for i, w := range writes {
		ids[i], reports[i], seen[i], overlay[i] = w.NodeID, w.Report, w.SeenAt, w.OverlayEncryption
	}
	rows, err := q.db.Query(ctx, `
		WITH free AS (
			SELECT id FROM nodes WHERE id = ANY($1) FOR NO KEY UPDATE SKIP LOCKED
		), written AS (
			UPDATE nodes n SET last_report = u.report, last_seen_at = GREATEST(n.last_seen_at, u.seen),
				overlay_encryption = u.overlay
			FROM unnest($1::uuid[], $2::bytea[], $3::timestamptz[], $4::boolean[]) AS u(id, report, seen, overlay)
			WHERE n.id = u.id AND n.id IN (SELECT id FROM free)
			RETURNING n.id
		)
		SELECT id FROM free`, ids, reports, seen, overlay)
	if err != nil {
		return nil, fmt.Errorf("write node reports: %w", mapErr(err))
	}
	defer rows.Close()
	var written []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("write node reports: %w", mapErr(err))
		}
		written = append(written, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("write node reports: %w", mapErr(err))
	}
	if err := q.writeNodePeers(ctx, writes, written); err != nil {
		return nil, err
	}
	return written, nil
}

// writeNodePeers stores the peer lists that changed, of the nodes just written (their rows
// are locked by this transaction). Lists change seldom: most batches have none.
func (q *Queries) writeNodePeers(ctx context.Context, writes []NodeReportWrite, written []uuid.UUID) error {
	if !slices.ContainsFunc(writes, func(w NodeReportWrite) bool { return w.Peers != nil }) {
		return nil
	}
	done := make(map[uuid.UUID]bool, len(written))
	for _, id := range written {
		done[id] = true
	}
	var ids []uuid.UUID
	var reachable, unreachable []string
	for _, w := range writes {
		if w.Peers != nil && done[w.NodeID] {
			ids = append(ids, w.NodeID)
			reachable = append(reachable, uuidArrayLiteral(w.Peers.Reachable))
			unreachable = append(unreachable, uuidArrayLiteral(w.Peers.Unreachable))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// Each list travels as an array literal: one statement for lists of different lengths.
	_, err := q.db.Exec(ctx, `UPDATE nodes n SET reachable_peers = u.reachable::uuid[], unreachable_peers = u.unreachable::uuid[]
		FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, reachable, unreachable)
		WHERE n.id = u.id`, ids, reachable, unreachable)
	if err != nil {
		return fmt.Errorf("write node peers: %w", mapErr(err))
	}
	return nil
}

// uuidArrayLiteral writes ids as a Postgres array literal: {id,id}.
func uuidArrayLiteral(ids []uuid.UUID) string {
	var b strings.Builder
	b.Grow(2 + 37*len(ids))
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.String())
	}
	b.WriteByte('}')
	return b.String()
}

// NotifyNodesChanged announces a change to a cluster's nodes on NodeChangesChannel (on
// commit inside a transaction).
func (q *Queries) NotifyNodesChanged(ctx context.Context, clusterID uuid.UUID) error {
	_, err := q.db.Exec(ctx, `SELECT pg_notify($1, $2)`, NodeChangesChannel, clusterID.String())
	return mapErr(err)
}

// ClusterSwarm is what the node manager needs of a cluster to drive its swarm.
type ClusterSwarm struct {
	ID                     uuid.UUID
	State                  string
	SwarmID                string
	ManagerJoinTokenSealed string
	WorkerJoinTokenSealed  string
	GossipKeySealed        string
}

// LockClusterSwarm returns a cluster's swarm state and locks the cluster's row until the
// transaction ends: lifecycle decisions (who runs swarm init, who joins) are made one at a
// time per cluster.
func (q *Queries) LockClusterSwarm(ctx context.Context, id uuid.UUID) (ClusterSwarm, error) {
	var c ClusterSwarm
	err := q.db.QueryRow(ctx, `SELECT id, state, swarm_id, manager_join_token_sealed, worker_join_token_sealed,
		gossip_key_sealed FROM clusters WHERE id = $1 FOR NO KEY UPDATE`, id).
		Scan(&c.ID, &c.State, &c.SwarmID, &c.ManagerJoinTokenSealed, &c.WorkerJoinTokenSealed, &c.GossipKeySealed)
	return c, mapErr(err)
}

// SetClusterSwarmState sets a cluster's state and error text.
func (q *Queries) SetClusterSwarmState(ctx context.Context, id uuid.UUID, state, errText string) error {
	_, err := q.db.Exec(ctx, `UPDATE clusters SET state = $2, error = $3 WHERE id = $1`, id, state, errText)
	return mapErr(err)
}

// ActivateClusterSwarm records a swarm made by swarm init: its id and sealed join tokens; the
// cluster becomes active.
func (q *Queries) ActivateClusterSwarm(ctx context.Context, id uuid.UUID, swarmID, managerTokenSealed, workerTokenSealed string) error {
	_, err := q.db.Exec(ctx, `UPDATE clusters SET state = 'active', error = '', swarm_id = $2,
		manager_join_token_sealed = $3, worker_join_token_sealed = $4 WHERE id = $1`,
		id, swarmID, managerTokenSealed, workerTokenSealed)
	return mapErr(err)
}

// ResetClusterSwarm returns a cluster whose last node left to pending, forgetting its swarm.
func (q *Queries) ResetClusterSwarm(ctx context.Context, id uuid.UUID) error {
	_, err := q.db.Exec(ctx, `UPDATE clusters SET state = 'pending', error = '', swarm_id = '',
		manager_join_token_sealed = '', worker_join_token_sealed = '' WHERE id = $1`, id)
	return mapErr(err)
}

// LatestNodeAlert returns when the newest activity event of eventType about a node was
// recorded, or nil.
func (q *Queries) LatestNodeAlert(ctx context.Context, nodeID uuid.UUID, eventType string) (*time.Time, error) {
	var at *time.Time
	err := q.db.QueryRow(ctx, `SELECT max(created_at) FROM activity_events
		WHERE entity_type = 'node' AND entity_id = $1 AND event_type = $2`, nodeID.String(), eventType).Scan(&at)
	return at, mapErr(err)
}
