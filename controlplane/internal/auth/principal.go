// Package auth authenticates callers (passwords, session and API tokens), decides what each RPC
// needs (the authorization table) and enforces it in a Connect interceptor, together with
// request validation.
package auth

import (
	"context"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// Principal is the authenticated caller of an RPC.
type Principal struct {
	UserID        uuid.UUID
	Email         string
	PlatformAdmin bool
	// SessionID is the session an access token belongs to; zero for API tokens.
	SessionID uuid.UUID
	// TokenID is the API token the call came with; zero for sessions.
	TokenID uuid.UUID
	// TokenOrgID and TokenRole bound what an API token may do.
	TokenOrgID uuid.UUID
	TokenRole  store.Role

	// OrgID and OrgRole are set by the interceptor for organization-scoped RPCs: the
	// organization named in the request and the caller's (checked) role in it.
	OrgID   uuid.UUID
	OrgRole store.Role

	// membership is the user's role in one organization, read together with the access
	// token (nil when it was not).
	membership *membership
}

// membership is a session user's role in an organization as the interceptor read it; a zero
// role means not a member.
type membership struct {
	orgID uuid.UUID
	role  store.Role
}

// IsAPIToken reports whether the caller authenticated with an API token.
func (p *Principal) IsAPIToken() bool { return p.TokenID != uuid.Nil }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller, or nil for public RPCs called without credentials.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// NodeIdentity is the node an agent-listener request comes from: the agent listener's
// middleware reads it from the verified client certificate after checking that the
// certificate is not revoked and the node not removed.
type NodeIdentity struct {
	NodeID uuid.UUID
	// Serial is the certificate's serial number (hex).
	Serial string
}

type nodeKey struct{}

// WithNode returns ctx carrying the calling node.
func WithNode(ctx context.Context, n NodeIdentity) context.Context {
	return context.WithValue(ctx, nodeKey{}, n)
}

// NodeFrom returns the calling node, if the request came with a valid node certificate.
func NodeFrom(ctx context.Context) (NodeIdentity, bool) {
	n, ok := ctx.Value(nodeKey{}).(NodeIdentity)
	return n, ok
}

type nodeRefusalKey struct{}

// WithNodeRefusal records why a client certificate was not accepted (revoked, node removed),
// so the interceptor can say so instead of a bare "certificate required".
func WithNodeRefusal(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, nodeRefusalKey{}, reason)
}

func nodeRefusal(ctx context.Context) string {
	s, _ := ctx.Value(nodeRefusalKey{}).(string)
	return s
}
