package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

// AgentService implements agentv1connect.AgentServiceHandler: enrollment and renewal here,
// the session (Connect, Ack, Report) in agent_session.go.
type AgentService struct {
	agentv1connect.UnimplementedAgentServiceHandler
	opts Options
}

// Enroll checks an enrollment token and, in one transaction, counts its use, records the node
// and issues the node's first certificate. Every refusal says exactly what was wrong with the
// token; the token itself is never logged.
func (s *AgentService) Enroll(ctx context.Context, req *connect.Request[agentv1.EnrollRequest]) (*connect.Response[agentv1.EnrollResponse], error) {
	tok, err := pki.ParseEnrollmentToken(req.Msg.GetToken())
	if err != nil {
		return nil, auth.FieldError("token", "is not an enrollment token (spen.<pin>.<secret>)")
	}
	if tok.CAPin != s.opts.Authority.Pin() {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("this enrollment token was made for another control plane (its CA pin differs)"))
	}
	facts := req.Msg.GetFacts()
	nodeID := uuid.New()
	var (
		t       store.EnrollmentToken
		certPEM []byte
	)
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		t, err = q.LockEnrollmentToken(ctx, tok.Hash())
		switch {
		case errors.Is(err, store.ErrNotFound):
			return connect.NewError(connect.CodeUnauthenticated, errors.New("unknown enrollment token"))
		case err != nil:
			return storeErr("enrollment token", err)
		case t.RevokedAt != nil:
			return connect.NewError(connect.CodeUnauthenticated, errors.New("this enrollment token was revoked"))
		case !time.Now().Before(t.ExpiresAt):
			return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("this enrollment token expired at %s", t.ExpiresAt.UTC().Format(time.RFC3339)))
		case t.UsageCount >= t.UsageLimit:
			return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("this enrollment token was already used (%d of %d uses)", t.UsageCount, t.UsageLimit))
		}
		if err := q.UseEnrollmentToken(ctx, t.ID); err != nil {
			return storeErr("enrollment token", err)
		}
		err = q.InsertNode(ctx, store.NewNode{
			ID: nodeID, ClusterID: t.ClusterID, TokenID: t.ID, Role: t.Role, Labels: t.Labels,
			Hostname: facts.GetHostname(), AdvertiseAddr: facts.GetAdvertiseAddr(), OS: facts.GetOs(),
			Kernel: facts.GetKernel(), Arch: facts.GetArch(), CPUs: int(facts.GetCpus()), MemoryBytes: facts.GetMemoryBytes(),
			DockerVersion: facts.GetDockerVersion(), AgentVersion: facts.GetAgentVersion(),
		})
		if err != nil {
			return storeErr("node", err)
		}
		cert, err := s.opts.Authority.IssueNode(ctx, q, nodeID, req.Msg.GetCsrDer(), s.opts.NodeCertTTL)
		if err != nil {
			var cerr *connect.Error
			if errors.As(err, &cerr) {
				return err
			}
			return auth.FieldError("csr_der", err.Error())
		}
		certPEM = pki.CertPEM(cert)
		// An open node list shows the new node at once, before its agent connects.
		if err := q.NotifyNodesChanged(ctx, t.ClusterID); err != nil {
			return storeErr("node", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "cluster.node.enrolled", "node", nodeID.String(), map[string]string{
			"cluster_id": t.ClusterID.String(), "hostname": facts.GetHostname(), "role": nodeRoleName(t.Role),
			"advertise_addr": facts.GetAdvertiseAddr(), "enrollment_token_id": t.ID.String(),
		}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&agentv1.EnrollResponse{
		NodeId: nodeID.String(), ClusterId: t.ClusterID.String(), Role: agentv1.NodeRole(t.Role), Labels: t.Labels,
		CertificatePem: string(certPEM), CaPem: string(s.opts.Authority.CertPEM()),
	}), nil
}

// Renew issues a fresh certificate to the calling node. Its older certificates stay valid
// until they expire (a renewal is not a revocation).
func (s *AgentService) Renew(ctx context.Context, req *connect.Request[agentv1.RenewRequest]) (*connect.Response[agentv1.RenewResponse], error) {
	node, _ := auth.NodeFrom(ctx) // the interceptor guarantees it
	var certPEM []byte
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		n, err := q.NodeEnrollmentByID(ctx, node.NodeID)
		if err != nil {
			return storeErr("node", err)
		}
		if n.RemovedAt != nil {
			return connect.NewError(connect.CodePermissionDenied, errors.New("this node was removed"))
		}
		cert, err := s.opts.Authority.IssueNode(ctx, q, node.NodeID, req.Msg.GetCsrDer(), s.opts.NodeCertTTL)
		if err != nil {
			return auth.FieldError("csr_der", err.Error())
		}
		certPEM = pki.CertPEM(cert)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&agentv1.RenewResponse{CertificatePem: string(certPEM)}), nil
}
