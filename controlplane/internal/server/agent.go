package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/ca"
	"skypanel/controlplane/internal/store"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

// standingLookup is what the agent listener asks the store about a client certificate.
type standingLookup interface {
	CertificateStanding(ctx context.Context, serial string) (store.CertificateStanding, error)
}

// nodeIdentity reads the calling node from a client certificate the TLS layer verified against
// the platform CA, and checks on every request that the certificate is not revoked and its
// node not removed. Requests without a certificate pass on without an identity: only Enroll
// admits them (the authorization table says so).
//
// Heartbeats (Report), which every agent sends every few seconds and which carry nothing but
// metrics, are checked against cached, which remembers good standings until a revocation's
// notification drops them (within milliseconds, on every replica); every other RPC (Connect,
// Ack, Renew, ...) is checked against fresh, the database itself.
func nodeIdentity(next http.Handler, fresh, cached standingLookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		leaf := r.TLS.VerifiedChains[0][0]
		idText, err := pki.NodeID(leaf)
		nodeID, perr := uuid.Parse(idText)
		if err != nil || perr != nil {
			next.ServeHTTP(w, r.WithContext(auth.WithNodeRefusal(ctx, "the client certificate names no node")))
			return
		}
		serial := ca.Serial(leaf)
		lookup := fresh
		if r.URL.Path == agentv1connect.AgentServiceReportProcedure {
			lookup = cached
		}
		standing, err := lookup.CertificateStanding(ctx, serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ctx = auth.WithNodeRefusal(ctx, "this node certificate was not issued by this control plane")
		case err != nil:
			http.Error(w, "certificate check unavailable", http.StatusServiceUnavailable)
			return
		case standing.NodeID != nodeID:
			ctx = auth.WithNodeRefusal(ctx, "this node certificate does not match its record")
		case standing.NodeRemoved:
			ctx = auth.WithNodeRefusal(ctx, "this node was removed from its cluster; enroll it again with a new token")
		case standing.Revoked:
			ctx = auth.WithNodeRefusal(ctx, "this node certificate was revoked")
		default:
			ctx = auth.WithNode(ctx, auth.NodeIdentity{NodeID: nodeID, Serial: serial})
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
