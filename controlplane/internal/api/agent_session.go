package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/nodes"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// callingNode is the node whose certificate the agent listener verified.
func callingNode(ctx context.Context) (uuid.UUID, error) {
	n, ok := auth.NodeFrom(ctx)
	if !ok {
		return uuid.Nil, connect.NewError(connect.CodeUnauthenticated, errors.New("a valid node certificate is required"))
	}
	return n.NodeID, nil
}

// Connect streams the calling node's commands: those after after_seq first, then new ones as
// they are queued, with keepalives while idle. It ends when the node connects again, is
// removed, or the control plane shuts down.
func (s *AgentService) Connect(ctx context.Context, req *connect.Request[agentv1.ConnectRequest], stream *connect.ServerStream[agentv1.ConnectResponse]) error {
	nodeID, err := callingNode(ctx)
	if err != nil {
		return err
	}
	return sessionErr(s.opts.Nodes.Serve(ctx, nodeID, req.Msg.GetAfterSeq(), stream.Send))
}

// Ack records the outcome of one of the calling node's commands (and acknowledges the lower
// ones). Acknowledging a command again changes nothing.
func (s *AgentService) Ack(ctx context.Context, req *connect.Request[agentv1.AckRequest]) (*connect.Response[agentv1.AckResponse], error) {
	nodeID, err := callingNode(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := s.opts.Nodes.Ack(ctx, nodeID, m.GetSeq(), m.GetOk(), m.GetError(), m.GetOutput()); err != nil {
		return nil, sessionErr(err)
	}
	return connect.NewResponse(&agentv1.AckResponse{}), nil
}

// Report takes the calling node's heartbeat and says when to send the next one.
func (s *AgentService) Report(ctx context.Context, req *connect.Request[agentv1.ReportRequest]) (*connect.Response[agentv1.ReportResponse], error) {
	nodeID, err := callingNode(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.opts.Nodes.Report(ctx, nodeID, req.Msg)
	if err != nil {
		return nil, sessionErr(err)
	}
	return connect.NewResponse(resp), nil
}

// sessionErr maps the node manager's errors to Connect codes an agent can act on: Aborted
// and Unavailable mean reconnect, PermissionDenied means stop (the node was removed).
func sessionErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nodes.ErrReplaced):
		return connect.NewError(connect.CodeAborted, err)
	case errors.Is(err, nodes.ErrStopped):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.Is(err, nodes.ErrClosed), errors.Is(err, nodes.ErrNodeRemoved):
		return connect.NewError(connect.CodePermissionDenied, errors.New("this node was removed or its certificate revoked"))
	case errors.Is(err, nodes.ErrUnknownCommand):
		return connect.NewError(connect.CodeNotFound, errors.New("seq: no such command for this node"))
	}
	return storeErr("node session", err)
}
