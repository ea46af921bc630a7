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

// The codecs are what every query of the store runs through: ids, nullable ids, id arrays
// and byte-string arrays must round-trip through a real Postgres in both formats, and the
// types they do not handle must still work as pgx handles them.
func TestIDsAndBatchArraysRoundTripThroughPostgres(t *testing.T) {
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

		var empty []uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid[]`, mode, []uuid.UUID{}).Scan(&empty))
		require.Equal(t, []uuid.UUID{}, empty, mode)
		var none []uuid.UUID
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid[]`, mode, []uuid.UUID(nil)).Scan(&none))
		require.Nil(t, none, mode)
		require.ErrorContains(t, pool.QueryRow(ctx, `SELECT ARRAY[$1::uuid, NULL]`, mode, id).Scan(&ids), "NULL", mode)
		if mode == pgx.QueryExecModeCacheStatement { // binary results: this codec's scan
			require.ErrorContains(t, pool.QueryRow(ctx, `SELECT ARRAY[[$1::uuid]]`, mode, id).Scan(&ids), "dimensions")
		}

		blobs := [][]byte{[]byte("first"), nil, {}, []byte{0, 1, 2, 255}}
		var gotBlobs [][]byte
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::bytea[]`, mode, blobs).Scan(&gotBlobs))
		require.Equal(t, blobs, gotBlobs, mode)
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT cardinality($1::bytea[])`, mode, [][]byte{}).Scan(&n))
		require.Zero(t, n, mode)

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
