package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
)

// The codec is what every query of the store runs through: ids, nullable ids and id
// arrays must round-trip through a real Postgres in both formats, and the types it does
// not handle itself must still work as pgx handles them.
func TestUUIDsRoundTripThroughPostgres(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Store(t).Pool()
	id, other := uuid.New(), uuid.New()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		var got uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, mode, id).Scan(&got))
		require.Equal(t, id, got, mode)

		var null *uuid.UUID
		var gotPtr *uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, mode, null).Scan(&gotPtr))
		require.Nil(t, gotPtr, mode)
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, mode, &other).Scan(&gotPtr))
		require.Equal(t, &other, gotPtr, mode)

		var ids []uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid[]`, mode, []uuid.UUID{id, other}).Scan(&ids))
		require.Equal(t, []uuid.UUID{id, other}, ids, mode)

		var s string
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid::text`, mode, id).Scan(&s))
		require.Equal(t, id.String(), s, mode)
		var pg pgtype.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, mode, id.String()).Scan(&pg))
		require.Equal(t, pgtype.UUID{Bytes: id, Valid: true}, pg, mode)

		err := pool.QueryRow(ctx, `SELECT NULL::uuid`, mode).Scan(&got)
		require.ErrorContains(t, err, "NULL", mode)
	}
}
