package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut strings.Builder
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestAdminCreateMakesAPlatformAdminWithAGeneratedPassword(t *testing.T) {
	db := testenv.DatabaseURL(t)
	out, err := runCmd(t, "admin", "create", "--database-url", db, "--email", "Root@Example.com")
	require.NoError(t, err, out)
	require.Contains(t, out, "created platform admin root@example.com")
	_, password, ok := strings.Cut(out, "password: ")
	require.True(t, ok, "the generated password is printed: %s", out)
	password = strings.TrimSpace(password)

	st, err := store.Open(context.Background(), store.Options{URL: db})
	require.NoError(t, err)
	defer st.Close()
	u, err := st.UserByEmail(context.Background(), "root@example.com")
	require.NoError(t, err)
	require.True(t, u.PlatformAdmin)
	require.NoError(t, auth.VerifyPassword(password, u.PasswordHash), "the printed password is the admin's")

	out, err = runCmd(t, "admin", "create", "--database-url", db, "--email", "root@example.com", "--if-missing")
	require.NoError(t, err, out)
	require.Contains(t, out, "exists already")
	again, err := st.UserByEmail(context.Background(), "root@example.com")
	require.NoError(t, err)
	require.Equal(t, u.PasswordHash, again.PasswordHash, "--if-missing leaves the user alone")
}

func TestAdminCreateRefusesBadInput(t *testing.T) {
	_, err := runCmd(t, "admin", "create", "--database-url", "postgres://x@127.0.0.1:1/x", "--email", "nope")
	require.ErrorContains(t, err, "--email")
	_, err = runCmd(t, "admin", "create", "--database-url", "postgres://x@127.0.0.1:1/x", "--email", "a@b.c", "--password", "short")
	require.ErrorContains(t, err, "--password")
}

func TestMigrateCommandReportsStatusAndRevertsAndReapplies(t *testing.T) {
	db := testenv.DatabaseURL(t)
	out, err := runCmd(t, "migrate", "status", "--database-url", db)
	require.NoError(t, err, out)
	require.Contains(t, out, "0001_accounts\tapplied")

	out, err = runCmd(t, "migrate", "down", "--all", "--database-url", db)
	require.NoError(t, err, out)
	require.Contains(t, out, "reverted 0001")
	out, err = runCmd(t, "migrate", "status", "--database-url", db)
	require.NoError(t, err, out)
	require.Contains(t, out, "0001_accounts\tpending")

	out, err = runCmd(t, "migrate", "up", "--database-url", db)
	require.NoError(t, err, out)
	require.Contains(t, out, "applied 0001")
	out, err = runCmd(t, "migrate", "up", "--database-url", db)
	require.NoError(t, err, out)
	require.Contains(t, out, "up to date")
}

func TestUnknownCommandsAndMissingSettingsAreRefused(t *testing.T) {
	_, err := runCmd(t, "frobnicate")
	require.ErrorContains(t, err, `unknown command "frobnicate"`)
	t.Setenv("SKYPANEL_DATABASE_URL", "")
	_, err = runCmd(t, "serve")
	require.ErrorContains(t, err, "--database-url")
}
