package benchcli_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/benchcli"
	"skypanel/controlplane/internal/testenv"
	"skypanel/shared/procstat"
)

// The test Postgres runs on this machine: its postmaster is found, and it is the parent of
// every backend, not only of the one that answered.
func TestPostgresServerIsThePostmaster(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Store(t).Pool()
	postmaster := benchcli.PostgresServer(ctx, pool)
	require.Greater(t, postmaster, 1)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var backend int
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend))
	require.Equal(t, postmaster, procstat.Parent(backend))
	require.Positive(t, procstat.TreeCPU(postmaster))
}
