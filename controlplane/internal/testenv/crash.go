package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// ownRole gives the control plane a database role of its own (a superuser, as the tests'
// base role is) and returns dbURL with it. Crash cuts that role off the database, as a
// killed process would be; the role is dropped when the test ends.
func ownRole(t testing.TB, dbURL string) string {
	t.Helper()
	role := "cp_" + strings.ToLower(rand.Text()[:12])
	adminExec(t, fmt.Sprintf(`CREATE ROLE %s LOGIN SUPERUSER`, role))
	t.Cleanup(func() {
		// The database goes after this (cleanups run last first): end the role's sessions.
		adminExec(t, fmt.Sprintf(`ALTER ROLE %s NOLOGIN`, role),
			fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'`, role),
			fmt.Sprintf(`DROP ROLE IF EXISTS %s`, role))
	})
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.User = url.User(role)
	return u.String()
}

// adminExec runs statements as the tests' base role.
func adminExec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, os.Getenv("SKYPANEL_TEST_DATABASE_URL"))
	require.NoError(t, err)
	defer c.Close(ctx)
	for _, s := range stmts {
		_, err := c.Exec(ctx, s)
		require.NoError(t, err, s)
	}
}

// Crash stops the control plane the way kill -9 would, then starts a new one on the same
// database, master key and addresses. First its database role loses the right to log in and
// every session of it is terminated, so nothing it was doing commits and nothing it does
// afterwards reaches the database: open transactions roll back, and the jobs it was running
// stay marked running (the next control plane rescues them as after a real crash). Then its
// listeners close without a graceful shutdown.
func (e *Env) Crash(t testing.TB) {
	t.Helper()
	u, err := url.Parse(e.Config.DatabaseURL)
	require.NoError(t, err)
	role := u.User.Username()
	adminExec(t, fmt.Sprintf(`ALTER ROLE %s NOLOGIN`, role),
		fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'`, role))
	grace := e.Config.ShutdownTimeout
	e.Config.ShutdownTimeout = time.Millisecond
	if e.stop != nil {
		e.stop(true)
		e.stop = nil
	}
	e.Config.ShutdownTimeout = grace
	adminExec(t, fmt.Sprintf(`ALTER ROLE %s LOGIN`, role))
	e.reboot(t)
}
