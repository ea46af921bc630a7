package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

func TestMigrationsRunUpDownUp(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t) // already migrated up, from the template
	all, err := store.Migrations()
	require.NoError(t, err)

	tables := func() int {
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx,
			`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n))
		return n
	}
	up := tables()
	require.Greater(t, up, 10, "the migrated schema has the accounts tables and river's")

	reverted, err := st.MigrateDown(ctx, 0)
	require.NoError(t, err)
	require.Len(t, reverted, len(all), "down reverts every migration")
	require.Equal(t, 1, tables(), "only schema_migrations is left after down --all")

	applied, err := st.MigrateUp(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(all), "up applies every migration again")
	require.Equal(t, up, tables(), "up after down gives back the same tables")

	again, err := st.MigrateUp(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second up has nothing to do")

	statuses, err := st.MigrationStatuses(ctx)
	require.NoError(t, err)
	for _, s := range statuses {
		require.NotNil(t, s.AppliedAt, "migration %d is applied", s.Version)
	}
}

func TestMigrateDownOneStepRevertsOnlyTheNewest(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	all, err := store.Migrations()
	require.NoError(t, err)
	reverted, err := st.MigrateDown(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []int{all[len(all)-1].Version}, reverted)
	applied, err := st.MigrateUp(ctx)
	require.NoError(t, err)
	require.Equal(t, []int{all[len(all)-1].Version}, applied)
}
