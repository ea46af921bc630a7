package api

import (
	"context"

	"connectrpc.com/connect"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// ReportWorkloads takes the calling node's report of the apps' services, tasks and containers.
func (s *AgentService) ReportWorkloads(ctx context.Context, req *connect.Request[agentv1.ReportWorkloadsRequest]) (*connect.Response[agentv1.ReportWorkloadsResponse], error) {
	nodeID, err := callingNode(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.opts.Deploy.Ingest(ctx, nodeID, req.Msg); err != nil {
		return nil, storeErr("workloads", err)
	}
	return connect.NewResponse(&agentv1.ReportWorkloadsResponse{}), nil
}

// PushLogs delivers log lines the calling node follows for a reader; stop says the reader is
// gone.
func (s *AgentService) PushLogs(ctx context.Context, req *connect.Request[agentv1.PushLogsRequest]) (*connect.Response[agentv1.PushLogsResponse], error) {
	nodeID, err := callingNode(ctx)
	if err != nil {
		return nil, err
	}
	ok := s.opts.Deploy.PushLogs(ctx, nodeID, req.Msg)
	return connect.NewResponse(&agentv1.PushLogsResponse{Stop: !ok}), nil
}
