package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
)

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header
}

func TestHealthReadinessAndMetricsAreServed(t *testing.T) {
	env := testenv.Start(t)

	code, body, hdr := get(t, env.URL+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	require.NotEmpty(t, hdr.Get("X-Request-Id"), "every response carries a request id")

	code, _, _ = get(t, env.URL+"/readyz")
	require.Equal(t, http.StatusOK, code)

	code, body, _ = get(t, env.URL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines")
}

func TestReadinessFailsWhenTheDatabaseIsGone(t *testing.T) {
	env := testenv.Start(t)
	env.Store.Close()
	code, body, _ := get(t, env.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "database")
}

func TestDashboardFallsBackToTheAppShellForClientRoutes(t *testing.T) {
	env := testenv.Start(t)
	for _, path := range []string{"/", "/orgs/123/members", "/login"} {
		code, body, hdr := get(t, env.URL+path)
		require.Equal(t, http.StatusOK, code, path)
		require.True(t, strings.Contains(body, "<html") || strings.Contains(body, "<!doctype html>"), path)
		require.Equal(t, "no-cache", hdr.Get("Cache-Control"), path)
	}
}

func TestRPCWithoutCredentialsIsUnauthenticated(t *testing.T) {
	env := testenv.Start(t)
	resp, err := http.Post(env.URL+"/skypanel.auth.v1.AuthService/WhoAmI", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, string(body), `"code":"unauthenticated"`)
}
