package nodes

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Command kinds: the names of Command's oneof fields, stored in node_commands.kind.
const (
	KindSwarmInit    = "swarm_init"
	KindSwarmJoin    = "swarm_join"
	KindSwarmLeave   = "swarm_leave"
	KindNodeUpdate   = "node_update"
	KindNodeRemove   = "node_remove"
	KindGossipConfig = "gossip_config"
)

// CommandKind returns the name of the command's oneof field, or "" when none is set.
func CommandKind(cmd *agentv1.Command) string {
	r := cmd.ProtoReflect()
	fd := r.WhichOneof(r.Descriptor().Oneofs().ByName("kind"))
	if fd == nil {
		return ""
	}
	return string(fd.Name())
}

// Enqueue appends cmd to the node's outbox in the caller's transaction, with the node's next
// sequence number, and returns that number. The command reaches the node's session only once
// the transaction commits (never, if it rolls back). cmd's seq, id and created_at are
// ignored: the outbox row sets them.
func (m *Manager) Enqueue(ctx context.Context, q *store.Queries, nodeID uuid.UUID, cmd *agentv1.Command) (int64, error) {
	return enqueue(ctx, q, nodeID, cmd)
}

func enqueue(ctx context.Context, q *store.Queries, nodeID uuid.UUID, cmd *agentv1.Command) (int64, error) {
	kind := CommandKind(cmd)
	if kind == "" {
		return 0, errors.New("enqueue node command: no command set")
	}
	bare := proto.CloneOf(cmd)
	bare.Seq, bare.Id, bare.CreatedAt = 0, "", nil
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(bare)
	if err != nil {
		return 0, fmt.Errorf("enqueue node command: %w", err)
	}
	row, err := q.InsertNodeCommand(ctx, nodeID, kind, payload)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s for node %s: %w", kind, nodeID, err)
	}
	return row.Seq, nil
}

// decodeCommand turns an outbox row into the Command the agent receives.
func decodeCommand(row store.NodeCommand) (*agentv1.Command, error) {
	cmd := &agentv1.Command{}
	if err := proto.Unmarshal(row.Payload, cmd); err != nil {
		return nil, fmt.Errorf("decode node command %s/%d: %w", row.NodeID, row.Seq, err)
	}
	cmd.Seq, cmd.Id, cmd.CreatedAt = row.Seq, row.ID.String(), timestamppb.New(row.CreatedAt)
	return cmd, nil
}
