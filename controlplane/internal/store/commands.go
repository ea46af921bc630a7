package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// NodeCommandsChannel is the Postgres NOTIFY channel that announces new commands for a node;
// the payload is the node id. Notifications are sent on commit, so a command queued in a
// transaction that rolls back is never announced (and, being rolled back, never delivered).
// The node manager also sends "<node id> session <replica id>" on it when a session starts,
// so another replica holding an older session of the node closes it, and "<node id> acked"
// when it records the node's answer to a command, so whoever waits for it looks again.
const NodeCommandsChannel = "skypanel_node_commands"

// NodeCommand is one row of a node's command outbox.
type NodeCommand struct {
	NodeID uuid.UUID
	Seq    int64
	ID     uuid.UUID
	// Kind is the name of the command's oneof field: swarm_init, swarm_join, node_update, ...
	Kind string
	// Payload is the protobuf Command without seq, id and created_at (the row holds those).
	Payload   []byte
	CreatedAt time.Time
	AckedAt   *time.Time
	// OK is the agent's verdict; nil until acknowledged, and for commands acknowledged only by
	// a later sequence (whose own acknowledgement was lost).
	OK     *bool
	Error  string
	Output string
}

const nodeCommandColumns = `node_id, seq, id, kind, payload, created_at, acked_at, ok, error, output`

func scanNodeCommand(row interface{ Scan(...any) error }) (NodeCommand, error) {
	var c NodeCommand
	err := row.Scan(&c.NodeID, &c.Seq, &c.ID, &c.Kind, &c.Payload, &c.CreatedAt, &c.AckedAt, &c.OK, &c.Error, &c.Output)
	return c, mapErr(err)
}

// InsertNodeCommand appends a command to a node's outbox with the node's next sequence number
// and announces it on NodeCommandsChannel when the transaction commits. A transaction-scoped
// advisory lock on the node serialises concurrent appends, so one node's sequence numbers
// become visible in order: a reader that has seen seq n never later finds a new row below n.
func (q *Queries) InsertNodeCommand(ctx context.Context, nodeID uuid.UUID, kind string, payload []byte) (NodeCommand, error) {
	if _, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('node_commands:' || $1::text, 0))`, nodeID); err != nil {
		return NodeCommand{}, fmt.Errorf("insert node command: lock: %w", mapErr(err))
	}
	c, err := scanNodeCommand(q.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO node_commands (node_id, seq, kind, payload)
			VALUES ($1, COALESCE((SELECT max(seq) FROM node_commands WHERE node_id = $1), 0) + 1, $2, $3)
			RETURNING `+nodeCommandColumns+`)
		SELECT ins.* FROM ins CROSS JOIN LATERAL (SELECT pg_notify($4, ins.node_id::text)) AS notified`,
		nodeID, kind, payload, NodeCommandsChannel))
	if err != nil {
		return c, fmt.Errorf("insert node command: %w", err)
	}
	return c, nil
}

// NodeCommandsAfter returns up to limit of a node's commands with a sequence above afterSeq,
// in order.
func (q *Queries) NodeCommandsAfter(ctx context.Context, nodeID uuid.UUID, afterSeq int64, limit int) ([]NodeCommand, error) {
	rows, err := q.db.Query(ctx, `SELECT `+nodeCommandColumns+` FROM node_commands
		WHERE node_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, nodeID, afterSeq, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []NodeCommand
	for rows.Next() {
		c, err := scanNodeCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// NodesWithCommandsAfter returns those of the nodes that have a command with a sequence above
// the one given for them (afterSeqs[i] for nodeIDs[i]): one query for every session of a
// replica, to find what notifications may have missed.
func (q *Queries) NodesWithCommandsAfter(ctx context.Context, nodeIDs []uuid.UUID, afterSeqs []int64) ([]uuid.UUID, error) {
	if len(nodeIDs) != len(afterSeqs) {
		return nil, errors.New("nodes with commands after: one sequence per node is needed")
	}
	if len(nodeIDs) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `
		SELECT u.id FROM unnest($1::uuid[], $2::bigint[]) AS u(id, after)
		WHERE EXISTS (SELECT 1 FROM node_commands c WHERE c.node_id = u.id AND c.seq > u.after)`, nodeIDs, afterSeqs)
	if err != nil {
		return nil, fmt.Errorf("nodes with commands after: %w", mapErr(err))
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("nodes with commands after: %w", mapErr(err))
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nodes with commands after: %w", mapErr(err))
	}
	return out, nil
}

// NodeCommand returns one command of a node.
func (q *Queries) NodeCommand(ctx context.Context, nodeID uuid.UUID, seq int64) (NodeCommand, error) {
	return scanNodeCommand(q.db.QueryRow(ctx, `SELECT `+nodeCommandColumns+` FROM node_commands
		WHERE node_id = $1 AND seq = $2`, nodeID, seq))
}

// AckNodeCommand records the outcome of a node's command seq. It returns the command and
// whether this call acknowledged it: false when it was acknowledged before, which makes a
// repeated Ack a no-op. ErrNotFound means the node has no such command.
func (q *Queries) AckNodeCommand(ctx context.Context, nodeID uuid.UUID, seq int64, ok bool, errText, output string) (NodeCommand, bool, error) {
	c, err := scanNodeCommand(q.db.QueryRow(ctx, `
		UPDATE node_commands SET acked_at = now(), ok = $3, error = $4, output = $5
		WHERE node_id = $1 AND seq = $2 AND acked_at IS NULL
		RETURNING `+nodeCommandColumns, nodeID, seq, ok, errText, output))
	if err == nil {
		return c, true, nil
	}
	if errors.Is(err, ErrNotFound) {
		// Acknowledged before, or never queued. A command closed with an unknown outcome
		// (its acknowledgement was lost and the agent resumed past it) gets the outcome the
		// repeated acknowledgement carries; the lifecycle already moved on, so this call still
		// reports false.
		c, err = scanNodeCommand(q.db.QueryRow(ctx, `
			UPDATE node_commands SET ok = $3, error = $4, output = $5
			WHERE node_id = $1 AND seq = $2 AND acked_at IS NOT NULL AND ok IS NULL
			RETURNING `+nodeCommandColumns, nodeID, seq, ok, errText, output))
		if errors.Is(err, ErrNotFound) {
			c, err = q.NodeCommand(ctx, nodeID, seq)
		}
	}
	if err != nil {
		return c, false, fmt.Errorf("ack node command: %w", err)
	}
	return c, false, nil
}

// AckNodeCommandsThrough acknowledges, with an unknown outcome, every open command of a node
// up to seq, in order: the agent says (by resuming after seq, or acknowledging a later one)
// that it finished them, but their own acknowledgements never arrived. It returns the
// commands it acknowledged.
func (q *Queries) AckNodeCommandsThrough(ctx context.Context, nodeID uuid.UUID, seq int64) ([]NodeCommand, error) {
	rows, err := q.db.Query(ctx, `UPDATE node_commands SET acked_at = now()
		WHERE node_id = $1 AND seq <= $2 AND acked_at IS NULL
		RETURNING `+nodeCommandColumns, nodeID, seq)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []NodeCommand
	for rows.Next() {
		c, err := scanNodeCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	slices.SortFunc(out, func(a, b NodeCommand) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// HasOpenNodeCommand reports whether a node has a command of kind not yet acknowledged.
func (q *Queries) HasOpenNodeCommand(ctx context.Context, nodeID uuid.UUID, kind string) (bool, error) {
	var open bool
	err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM node_commands
		WHERE node_id = $1 AND kind = $2 AND acked_at IS NULL)`, nodeID, kind).Scan(&open)
	return open, mapErr(err)
}

// LatestNodeCommands returns, for each of the nodes, its newest command of kind (nodes without
// one are absent from the map).
func (q *Queries) LatestNodeCommands(ctx context.Context, nodeIDs []uuid.UUID, kind string) (map[uuid.UUID]NodeCommand, error) {
	rows, err := q.db.Query(ctx, `SELECT DISTINCT ON (node_id) `+nodeCommandColumns+` FROM node_commands
		WHERE node_id = ANY($1) AND kind = $2 ORDER BY node_id, seq DESC`, nodeIDs, kind)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]NodeCommand{}
	for rows.Next() {
		c, err := scanNodeCommand(rows)
		if err != nil {
			return nil, err
		}
		out[c.NodeID] = c
	}
	return out, mapErr(rows.Err())
}

// OpenNodeCommandsOlderThan returns the open commands of kind queued before the given time,
// oldest first (the health loop uses it to finish removals of nodes that went away).
func (q *Queries) OpenNodeCommandsOlderThan(ctx context.Context, kind string, before time.Time) ([]NodeCommand, error) {
	rows, err := q.db.Query(ctx, `SELECT `+nodeCommandColumns+` FROM node_commands
		WHERE kind = $1 AND acked_at IS NULL AND created_at < $2 ORDER BY created_at LIMIT 100`, kind, before)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []NodeCommand
	for rows.Next() {
		c, err := scanNodeCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// NotifyNodeCommandsMany sends NotifyNodeCommands' notification for each of the nodes, with
// the same payload, in one statement (and so, outside a transaction, one commit).
func (q *Queries) NotifyNodeCommandsMany(ctx context.Context, nodeIDs []uuid.UUID, payload string) error {
	if len(nodeIDs) == 0 {
		return nil
	}
	suffix := ""
	if payload != "" {
		suffix = " " + payload
	}
	_, err := q.db.Exec(ctx, `SELECT pg_notify($1, id::text || $2) FROM unnest($3::uuid[]) AS id`,
		NodeCommandsChannel, suffix, nodeIDs)
	return mapErr(err)
}

// NotifyNodeCommands wakes the sessions of a node on every replica, with payload appended
// after the node id when not empty. Outside a transaction it is sent at once; inside one, on
// commit.
func (q *Queries) NotifyNodeCommands(ctx context.Context, nodeID uuid.UUID, payload string) error {
	msg := nodeID.String()
	if payload != "" {
		msg += " " + payload
	}
	_, err := q.db.Exec(ctx, `SELECT pg_notify($1, $2)`, NodeCommandsChannel, msg)
	return mapErr(err)
}
