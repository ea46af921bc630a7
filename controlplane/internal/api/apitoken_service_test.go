package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	apitokenv1 "skypanel/shared/gen/go/skypanel/apitoken/v1"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
)

func createTokenReq(org uuid.UUID, name string, role store.Role) *apitokenv1.CreateAPITokenRequest {
	return &apitokenv1.CreateAPITokenRequest{OrganizationId: org.String(), Name: name, Role: orgv1.Role(role)}
}

// createToken makes an API token of the organization as creator, through the API, and
// returns its secret.
func (f *tenancy) createToken(t *testing.T, creator *testenv.User, org uuid.UUID, role store.Role) string {
	t.Helper()
	resp, err := f.tokens(creator.Token).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(org, "token "+role.String(), role)))
	require.NoError(t, err)
	return resp.Msg.GetSecret()
}

func (f *tenancy) listTokens(t *testing.T, token string, org uuid.UUID) []*apitokenv1.APIToken {
	t.Helper()
	resp, err := f.tokens(token).ListAPITokens(f.ctx, connect.NewRequest(&apitokenv1.ListAPITokensRequest{OrganizationId: org.String()}))
	require.NoError(t, err)
	return resp.Msg.GetTokens()
}

// listMembersErr calls a viewer RPC of the organization as bearer.
func (f *tenancy) listMembersErr(bearer string, org uuid.UUID) error {
	_, err := f.orgs(bearer).ListMembers(f.ctx, connect.NewRequest(&orgv1.ListMembersRequest{OrganizationId: org.String()}))
	return err
}

// listActivityErr calls ListActivity of the organization as bearer.
func (f *tenancy) listActivityErr(bearer string, org uuid.UUID) error {
	_, err := f.activity(bearer).ListActivity(f.ctx, connect.NewRequest(&activityv1.ListActivityRequest{OrganizationId: org.String()}))
	return err
}

// listTokensErr calls an admin RPC of the organization as bearer.
func (f *tenancy) listTokensErr(bearer string, org uuid.UUID) error {
	_, err := f.tokens(bearer).ListAPITokens(f.ctx, connect.NewRequest(&apitokenv1.ListAPITokensRequest{OrganizationId: org.String()}))
	return err
}

// events lists the organization's events of one type, newest first, as its owner would.
func (f *tenancy) events(t *testing.T, org uuid.UUID, owner *testenv.User, eventType string) []*activityv1.Event {
	t.Helper()
	return f.listActivity(t, owner.Token, &activityv1.ListActivityRequest{
		OrganizationId: org.String(), Filter: &activityv1.Filter{EventTypes: []string{eventType}},
	}).GetEvents()
}

func TestAPITokenCreateShowsTheSecretOnceAndListShowsTheToken(t *testing.T) {
	f := setupTenancy(t)
	resp, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(&apitokenv1.CreateAPITokenRequest{
		OrganizationId: f.orgA.String(), Name: "  deploy bot  ", Role: orgv1.Role_ROLE_MEMBER, TtlDays: 30,
	}))
	require.NoError(t, err)
	secret, tok := resp.Msg.GetSecret(), resp.Msg.GetToken()
	require.True(t, strings.HasPrefix(secret, "spak_"), "secret %q says what it is", secret)
	_, err = auth.ParseToken(auth.KindAPI, secret)
	require.NoError(t, err)
	require.Equal(t, auth.TokenPrefix(secret), tok.GetPrefix())
	require.Equal(t, "deploy bot", tok.GetName())
	require.Equal(t, orgv1.Role_ROLE_MEMBER, tok.GetRole())
	require.Equal(t, f.orgA.String(), tok.GetOrganizationId())
	require.Equal(t, f.adminA.Email, tok.GetCreatedByEmail())
	require.WithinDuration(t, time.Now().Add(30*24*time.Hour), tok.GetExpiresAt().AsTime(), time.Minute)
	require.Nil(t, tok.GetLastUsedAt())

	forever := f.createToken(t, f.ownerA, f.orgA, store.RoleAdmin)
	require.NotEqual(t, secret, forever)

	listed := f.listTokens(t, f.adminA.Token, f.orgA)
	require.Len(t, listed, 2)
	require.Equal(t, auth.TokenPrefix(forever), listed[0].GetPrefix(), "newest first")
	require.Nil(t, listed[0].GetExpiresAt(), "ttl_days 0 never expires")
	require.Equal(t, f.ownerA.Email, listed[0].GetCreatedByEmail())
	require.Equal(t, tok.GetId(), listed[1].GetId())
	raw, err := json.Marshal(listed)
	require.NoError(t, err)
	require.NotContains(t, string(raw), strings.TrimPrefix(secret, tok.GetPrefix()), "the secret is never shown again")

	// The token records its use.
	require.NoError(t, f.listActivityErr(secret, f.orgA))
	require.NotNil(t, f.listTokens(t, f.adminA.Token, f.orgA)[1].GetLastUsedAt())

	evs := f.events(t, f.orgA, f.ownerA, "apitoken.created")
	require.Len(t, evs, 2)
	e := evs[1]
	require.Equal(t, f.adminA.Email, e.GetActorEmail())
	require.Equal(t, "api_token", e.GetEntityType())
	require.Equal(t, tok.GetId(), e.GetEntityId())
	require.Equal(t, map[string]string{"name": "deploy bot", "role": "member"}, e.GetMetadata())
}

func TestAPITokenCreateRefusesBadInput(t *testing.T) {
	f := setupTenancy(t)
	for _, tc := range []struct {
		name  string
		req   *apitokenv1.CreateAPITokenRequest
		field string
	}{
		{"a blank name", createTokenReq(f.orgA, "   ", store.RoleViewer), "name"},
		{"an owner role", createTokenReq(f.orgA, "x", store.RoleOwner), "role"},
		{"no role", createTokenReq(f.orgA, "x", 0), "role"},
		{"a negative lifetime", &apitokenv1.CreateAPITokenRequest{OrganizationId: f.orgA.String(), Name: "x", Role: orgv1.Role_ROLE_VIEWER, TtlDays: -1}, "ttl_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(tc.req))
			requireActivityCode(t, err, connect.CodeInvalidArgument, tc.field)
		})
	}
	require.Empty(t, f.listTokens(t, f.adminA.Token, f.orgA))
}

func TestAPITokenWorksOnItsOrganizationOnly(t *testing.T) {
	f := setupTenancy(t)
	viewer := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
	admin := f.createToken(t, f.adminA, f.orgA, store.RoleAdmin)

	require.NoError(t, f.listMembersErr(viewer, f.orgA))
	require.NoError(t, f.listActivityErr(viewer, f.orgA))
	require.NoError(t, f.listTokensErr(admin, f.orgA))

	requireActivityCode(t, f.listMembersErr(admin, f.orgB), connect.CodePermissionDenied, "another organization")
	requireActivityCode(t, f.listActivityErr(admin, f.orgB), connect.CodePermissionDenied, "another organization")
	requireActivityCode(t, f.listTokensErr(viewer, f.orgA), connect.CodePermissionDenied, "admin")

	// Tokens cannot make tokens, even an admin one.
	_, err := f.tokens(admin).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(f.orgA, "child", store.RoleViewer)))
	requireActivityCode(t, err, connect.CodePermissionDenied, "API tokens cannot")
}

func TestAPITokenWorksOverPlainHTTPJSON(t *testing.T) {
	f := setupTenancy(t)
	secret := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)

	post := func(bearer, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(f.ctx, http.MethodPost,
			f.env.URL+"/skypanel.activity.v1.ActivityService/ListActivity", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
		return resp.StatusCode, out
	}

	code, body := post(secret, `{"organizationId": "`+f.orgA.String()+`", "filter": {"eventTypes": ["apitoken."]}}`)
	require.Equal(t, http.StatusOK, code, "body: %v", body)
	events, _ := body["events"].([]any)
	require.Len(t, events, 1)
	e := events[0].(map[string]any)
	require.Equal(t, "apitoken.created", e["eventType"])
	require.Equal(t, "ACTOR_KIND_USER", e["actorKind"])
	_, isString := e["id"].(string)
	require.True(t, isString, "ids are strings in JSON: %v", e["id"])

	code, body = post(secret, `{"organizationId": "`+f.orgB.String()+`"}`)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "permission_denied", body["code"])

	code, body = post("", `{"organizationId": "`+f.orgA.String()+`"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "unauthenticated", body["code"])
}

func TestAPITokenRevokeStopsItAtOnce(t *testing.T) {
	f := setupTenancy(t)
	resp, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(f.orgA, "ci", store.RoleMember)))
	require.NoError(t, err)
	secret, id := resp.Msg.GetSecret(), resp.Msg.GetToken().GetId()
	require.NoError(t, f.listActivityErr(secret, f.orgA))

	revoke := func(as *testenv.User, org uuid.UUID) error {
		_, err := f.tokens(as.Token).RevokeAPIToken(f.ctx, connect.NewRequest(&apitokenv1.RevokeAPITokenRequest{
			OrganizationId: org.String(), TokenId: id,
		}))
		return err
	}
	// Another organization's admin names the token under their own organization: not found.
	requireActivityCode(t, revoke(f.ownerB, f.orgB), connect.CodeNotFound, "api token not found")
	require.NoError(t, f.listActivityErr(secret, f.orgA))

	require.NoError(t, revoke(f.ownerA, f.orgA))
	requireActivityCode(t, f.listActivityErr(secret, f.orgA), connect.CodeUnauthenticated, "")
	require.Empty(t, f.listTokens(t, f.adminA.Token, f.orgA))
	requireActivityCode(t, revoke(f.ownerA, f.orgA), connect.CodeNotFound, "api token not found")

	evs := f.events(t, f.orgA, f.ownerA, "apitoken.revoked")
	require.Len(t, evs, 1)
	require.Equal(t, f.ownerA.Email, evs[0].GetActorEmail())
	require.Equal(t, id, evs[0].GetEntityId())
	require.Equal(t, "ci", evs[0].GetMetadata()["name"])
}

func TestAPITokenStopsWhenItsCreatorIsRemovedFromTheOrganization(t *testing.T) {
	f := setupTenancy(t)
	secret := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
	require.NoError(t, f.listActivityErr(secret, f.orgA))

	_, err := f.orgs(f.ownerA.Token).RemoveMember(f.ctx, connect.NewRequest(&orgv1.RemoveMemberRequest{
		OrganizationId: f.orgA.String(), UserId: f.adminA.ID.String(),
	}))
	require.NoError(t, err)
	requireActivityCode(t, f.listActivityErr(secret, f.orgA), connect.CodeUnauthenticated, "")

	// Invited back, the creator does not bring the old token back to life.
	f.addMember(t, f.orgA, f.adminA, store.RoleAdmin)
	requireActivityCode(t, f.listActivityErr(secret, f.orgA), connect.CodeUnauthenticated, "")
}

func TestAPITokenStopsWhileItsCreatorIsNotAMember(t *testing.T) {
	// The membership check itself, not the revocation that RemoveMember adds on top.
	f := setupTenancy(t)
	secret := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
	f.exec(t, `DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`, f.orgA, f.adminA.ID)
	requireActivityCode(t, f.listActivityErr(secret, f.orgA), connect.CodeUnauthenticated, "")
}

func TestAPITokenActsWithTheLowerOfItsRoleAndItsCreatorsRole(t *testing.T) {
	f := setupTenancy(t)
	admin := f.createToken(t, f.adminA, f.orgA, store.RoleAdmin)
	viewer := f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
	require.NoError(t, f.listTokensErr(admin, f.orgA))
	requireActivityCode(t, f.listTokensErr(viewer, f.orgA), connect.CodePermissionDenied, "admin role")

	_, err := f.orgs(f.ownerA.Token).ChangeMemberRole(f.ctx, connect.NewRequest(&orgv1.ChangeMemberRoleRequest{
		OrganizationId: f.orgA.String(), UserId: f.adminA.ID.String(), Role: orgv1.Role_ROLE_VIEWER,
	}))
	require.NoError(t, err)
	requireActivityCode(t, f.listTokensErr(admin, f.orgA), connect.CodePermissionDenied, "you have viewer")
	require.NoError(t, f.listActivityErr(admin, f.orgA), "still what a viewer may do")
}

func TestAPITokenExpiredIsUnauthenticated(t *testing.T) {
	f := setupTenancy(t)
	resp, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(&apitokenv1.CreateAPITokenRequest{
		OrganizationId: f.orgA.String(), Name: "short", Role: orgv1.Role_ROLE_VIEWER, TtlDays: 1,
	}))
	require.NoError(t, err)
	secret := resp.Msg.GetSecret()
	require.NoError(t, f.listActivityErr(secret, f.orgA))

	f.exec(t, `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, resp.Msg.GetToken().GetId())
	requireActivityCode(t, f.listActivityErr(secret, f.orgA), connect.CodeUnauthenticated, "")
	require.Empty(t, f.listTokens(t, f.adminA.Token, f.orgA), "expired tokens are not listed")
}

func TestAPITokenLimitIsFiftyLiveTokensPerOrganization(t *testing.T) {
	f := setupTenancy(t)
	var first *apitokenv1.APIToken
	for i := range store.MaxLiveAPITokens {
		resp, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(f.orgA, "bulk", store.RoleViewer)))
		require.NoError(t, err, "token %d", i+1)
		if first == nil {
			first = resp.Msg.GetToken()
		}
	}
	_, err := f.tokens(f.adminA.Token).CreateAPIToken(f.ctx, connect.NewRequest(createTokenReq(f.orgA, "one more", store.RoleViewer)))
	requireActivityCode(t, err, connect.CodeFailedPrecondition, "revoke one first")
	// Another organization has its own allowance.
	f.createToken(t, f.ownerB, f.orgB, store.RoleViewer)

	_, err = f.tokens(f.adminA.Token).RevokeAPIToken(f.ctx, connect.NewRequest(&apitokenv1.RevokeAPITokenRequest{
		OrganizationId: f.orgA.String(), TokenId: first.GetId(),
	}))
	require.NoError(t, err)
	f.createToken(t, f.adminA, f.orgA, store.RoleViewer)
}
