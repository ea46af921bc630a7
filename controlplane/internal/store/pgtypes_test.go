package store

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

func TestRegisteredTypesEncodeWithoutAllocating(t *testing.T) {
	m := pgtype.NewMap()
	registerTypes(m)
	plain := pgtype.NewMap()
	for _, c := range encodeCases() {
		big := make([]byte, 0, 1024)
		allocs := testing.AllocsPerRun(100, func() {
			_, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.value, big[:0])
			require.NoError(t, err)
		})
		require.Zero(t, allocs, "%T", c.value)
		// Byte for byte what pgx's own codecs write, except for an empty array: pgx writes
		// one dimension of length 0, these no dimension (as Postgres itself does); the
		// round trip through Postgres covers both.
		if v := reflect.ValueOf(c.value); !v.IsNil() && v.Len() == 0 {
			continue
		}
		got, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.value, nil)
		require.NoError(t, err)
		want, err := plain.Encode(c.oid, pgtype.BinaryFormatCode, c.value, nil)
		require.NoError(t, err)
		require.Equal(t, want, got, "%d %T", c.oid, c.value)
	}
	id := uuid.New()
	buf := make([]byte, 0, 64)
	out, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, buf)
	require.NoError(t, err)
	require.Equal(t, id[:], out)
	// pgx alone goes through driver.Valuer: a string, a failed attempt and a parse.
	var value any = id
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, value, buf[:0])
	})
	require.Zero(t, allocs)
	require.Greater(t, testing.AllocsPerRun(100, func() {
		_, _ = plain.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, value, buf[:0])
	}), 2.0, "pgx's own encoding of a uuid.UUID got cheap: this codec may no longer be needed")

	var got uuid.UUID
	require.NoError(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, id[:], &got))
	require.Equal(t, id, got)
	require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, nil, &got))
	require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, id[:8], &got))
}

type encodeCase struct {
	oid   uint32
	value any
}

// encodeCases are parameters of every array type registerTypes takes over, including the
// empty and the NULL (nil) array and values at the edges of each element type.
func encodeCases() []encodeCase {
	at := time.Date(2026, 11, 26, 9, 30, 1, 123456789, time.UTC)
	old := time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -7*3600))
	return []encodeCase{
		{pgtype.UUIDArrayOID, []uuid.UUID{uuid.New(), uuid.New()}},
		{pgtype.UUIDArrayOID, []uuid.UUID{}},
		{pgtype.UUIDArrayOID, []uuid.UUID(nil)},
		{pgtype.ByteaArrayOID, [][]byte{[]byte("report"), nil, {}}},
		{pgtype.Int8ArrayOID, []int64{0, -1, math.MaxInt64, math.MinInt64}},
		{pgtype.Int8ArrayOID, []int64{}},
		{pgtype.Int8ArrayOID, []int64(nil)},
		{pgtype.Float4ArrayOID, []float64{0, -1.5, 99.9, math.MaxFloat32, math.Inf(1), math.SmallestNonzeroFloat64}},
		{pgtype.Float8ArrayOID, []float64{0, -1.5, math.MaxFloat64, math.Inf(-1)}},
		{pgtype.TimestamptzArrayOID, []time.Time{at, old, {}, at.Local()}},
		{pgtype.TimestamptzArrayOID, []time.Time(nil)},
		{pgtype.BoolArrayOID, []bool{true, false}},
	}
}

// The uuid[] scan reads bytes from the server: whatever they are, it returns an error or
// the ids they encode, and what it returns encodes back to the same bytes.
func FuzzScanUUIDArray(f *testing.F) {
	for _, ids := range [][]uuid.UUID{nil, {}, {uuid.New()}, {uuid.New(), uuid.New(), uuid.New()}} {
		b, _ := uuidArrayEncoder().Encode(ids, nil)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x0b, 0x86, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x0b, 0x86})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ids []uuid.UUID
		if err := (scanUUIDArray{}).Scan(b, &ids); err != nil || b == nil {
			return
		}
		again, err := uuidArrayEncoder().Encode(ids, nil)
		require.NoError(t, err)
		var back []uuid.UUID
		require.NoError(t, (scanUUIDArray{}).Scan(again, &back))
		require.Equal(t, ids, back)
	})
}

func uuidArrayEncoder() pgtype.EncodePlan {
	m := pgtype.NewMap()
	registerTypes(m)
	return m.PlanEncode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{})
}
