package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	apitokenv1 "skypanel/shared/gen/go/skypanel/apitoken/v1"
	"skypanel/shared/gen/go/skypanel/apitoken/v1/apitokenv1connect"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
)

// APITokenService implements apitokenv1connect.APITokenServiceHandler.
//
// A token speaks for its creator within one organization, with the lower of its own role and
// the creator's current role there; it stops working when revoked, when it expires, when its
// creator leaves the organization or is disabled.
type APITokenService struct {
	apitokenv1connect.UnimplementedAPITokenServiceHandler
	opts Options
}

// CreateAPIToken makes a token with at most the caller's own role. Only people (sessions) may
// make tokens, so a leaked token cannot mint more.
func (s *APITokenService) CreateAPIToken(ctx context.Context, req *connect.Request[apitokenv1.CreateAPITokenRequest]) (*connect.Response[apitokenv1.CreateAPITokenResponse], error) {
	p := mustPrincipal(ctx)
	name := strings.TrimSpace(req.Msg.GetName())
	if name == "" {
		return nil, auth.FieldError("name", "must not be blank")
	}
	role := store.Role(req.Msg.GetRole())
	if role > p.OrgRole {
		return nil, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("a token cannot have more than your own role (%s)", p.OrgRole))
	}
	var expiresAt *time.Time
	if days := req.Msg.GetTtlDays(); days > 0 {
		t := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		expiresAt = &t
	}
	secret, hash := auth.NewToken(auth.KindAPI)
	var tok store.APIToken
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		tok, err = q.CreateAPIToken(ctx, store.NewAPIToken{
			OrganizationID: p.OrgID, Name: name, Role: role, TokenHash: hash, Prefix: auth.TokenPrefix(secret),
			CreatedBy: p.UserID, ExpiresAt: expiresAt,
		})
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "apitoken.created", "api_token", tok.ID.String(),
			map[string]string{"name": tok.Name, "role": tok.Role.String()}))
		return err
	})
	if errors.Is(err, store.ErrTooManyAPITokens) {
		return nil, failedPrecondition("the organization has %d live API tokens, the most allowed: revoke one first",
			store.MaxLiveAPITokens)
	}
	if err != nil {
		return nil, storeErr("organization", err)
	}
	return connect.NewResponse(&apitokenv1.CreateAPITokenResponse{Token: apiTokenMessage(tok), Secret: secret}), nil
}

// ListAPITokens lists the organization's live tokens, newest first. Revoked and expired
// tokens are left out: they authenticate nothing and do not count towards the cap of
// store.MaxLiveAPITokens.
func (s *APITokenService) ListAPITokens(ctx context.Context, _ *connect.Request[apitokenv1.ListAPITokensRequest]) (*connect.Response[apitokenv1.ListAPITokensResponse], error) {
	p := mustPrincipal(ctx)
	tokens, err := s.opts.Store.ListAPITokens(ctx, p.OrgID)
	if err != nil {
		return nil, storeErr("api tokens", err)
	}
	resp := &apitokenv1.ListAPITokensResponse{Tokens: make([]*apitokenv1.APIToken, 0, len(tokens))}
	for _, t := range tokens {
		resp.Tokens = append(resp.Tokens, apiTokenMessage(t))
	}
	return connect.NewResponse(resp), nil
}

// RevokeAPIToken revokes a token of the organization; it stops working on the next call. A
// token of another organization, or one already revoked, is NotFound.
func (s *APITokenService) RevokeAPIToken(ctx context.Context, req *connect.Request[apitokenv1.RevokeAPITokenRequest]) (*connect.Response[apitokenv1.RevokeAPITokenResponse], error) {
	p := mustPrincipal(ctx)
	id, err := uuid.Parse(req.Msg.GetTokenId())
	if err != nil {
		return nil, auth.FieldError("token_id", "must be a UUID")
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		tok, err := q.RevokeAPIToken(ctx, p.OrgID, id)
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "apitoken.revoked", "api_token", tok.ID.String(),
			map[string]string{"name": tok.Name, "role": tok.Role.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("api token", err)
	}
	return connect.NewResponse(&apitokenv1.RevokeAPITokenResponse{}), nil
}

// apiTokenMessage is a token as the API shows it: never its hash.
func apiTokenMessage(t store.APIToken) *apitokenv1.APIToken {
	return &apitokenv1.APIToken{
		Id: t.ID.String(), OrganizationId: t.OrganizationID.String(), Name: t.Name, Role: orgv1.Role(t.Role),
		Prefix: t.Prefix, CreatedByEmail: t.CreatedByEmail, CreatedAt: ts(t.CreatedAt),
		ExpiresAt: tsPtr(t.ExpiresAt), LastUsedAt: tsPtr(t.LastUsedAt),
	}
}
