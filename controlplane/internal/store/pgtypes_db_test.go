package store_test

import (
	"context"
	"math"
	"testing"
	"time"

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

		// The metrics and report batches' other arrays.
		at := time.Date(2026, 11, 26, 9, 30, 1, 123456789, time.UTC)
		old := time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)
		var gotInts []int64
		ints := []int64{0, -1, math.MaxInt64, math.MinInt64}
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::bigint[]`, mode, ints).Scan(&gotInts))
		require.Equal(t, ints, gotInts, mode)
		var gotFloats []float64
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::real[]`, mode, []float64{0, -1.5, 99.25}).Scan(&gotFloats))
		require.Equal(t, []float64{0, -1.5, 99.25}, gotFloats, mode)
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::float8[]`, mode, []float64{math.MaxFloat64, 0.1}).Scan(&gotFloats))
		require.Equal(t, []float64{math.MaxFloat64, 0.1}, gotFloats, mode)
		var gotTimes []time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::timestamptz[]`, mode, []time.Time{at, old, at.In(time.FixedZone("x", 3600))}).Scan(&gotTimes))
		require.Len(t, gotTimes, 3, mode)
		for i, want := range []time.Time{at.Truncate(time.Microsecond), old.Truncate(time.Microsecond), at.Truncate(time.Microsecond)} {
			require.True(t, want.Equal(gotTimes[i]), "%v: %v, want %v", mode, gotTimes[i], want)
		}
		var gotBools []bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::boolean[]`, mode, []bool{true, false}).Scan(&gotBools))
		require.Equal(t, []bool{true, false}, gotBools, mode)
		require.NoError(t, pool.QueryRow(ctx, `SELECT cardinality($1::bigint[]), cardinality($2::timestamptz[])`, mode,
			[]int64{}, []time.Time{}).Scan(&n, &n))
		require.Zero(t, n, mode)
		var isNull bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::bigint[] IS NULL AND $2::real[] IS NULL`, mode,
			[]int64(nil), []float64(nil)).Scan(&isNull))
		require.True(t, isNull, mode)
		// Types the codecs leave to pgx still work: int32 elements, a pgtype array.
		var gotInt32 []int32
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::bigint[]`, mode, []int32{7}).Scan(&gotInt32))
		require.Equal(t, []int32{7}, gotInt32, mode)

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
