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
		ctx, ok := identify(r, fresh, cached)
		if !ok {
			http.Error(w, "certificate check unavailable", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// identify returns r's context with the node its certificate names, or with the reason it is
// refused; false when the check cannot be made. It is a function of its own so that its locals
// are not on the stack of a command stream's goroutine for the stream's life (see
// nodes.Manager.open).
//
//go:noinline
func identify(r *http.Request, fresh, cached standingLookup) (context.Context, bool) {
	ctx := r.Context()
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ctx, true
	}
	leaf := r.TLS.VerifiedChains[0][0]
	idText, err := pki.NodeID(leaf)
	nodeID, perr := uuid.Parse(idText)
	if err != nil || perr != nil {
		return auth.WithNodeRefusal(ctx, "the client certificate names no node"), true
	}
	serial := ca.Serial(leaf)
	lookup := fresh
	if r.URL.Path == agentv1connect.AgentServiceReportProcedure {
		lookup = cached
	}
	standing, err := lookup.CertificateStanding(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return auth.WithNodeRefusal(ctx, "this node certificate was not issued by this control plane"), true
	case err != nil:
		return nil, false
	case standing.NodeID != nodeID:
		return auth.WithNodeRefusal(ctx, "this node certificate does not match its record"), true
	case standing.NodeRemoved:
		return auth.WithNodeRefusal(ctx, "this node was removed from its cluster; enroll it again with a new token"), true
	case standing.Revoked:
		return auth.WithNodeRefusal(ctx, "this node certificate was revoked"), true
	}
	return auth.WithNode(ctx, auth.NodeIdentity{NodeID: nodeID, Serial: serial}), true
}
