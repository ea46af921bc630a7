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
