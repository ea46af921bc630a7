package store

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

func TestRegisteredTypesEncodeWithoutAllocating(t *testing.T) {
	m := pgtype.NewMap()
	registerTypes(m)
	for _, v := range []any{[]uuid.UUID{uuid.New(), uuid.New()}, [][]byte{[]byte("report"), nil, {}}} {
		big := make([]byte, 0, 1024)
		allocs := testing.AllocsPerRun(100, func() {
			_, err := m.Encode(oidOf(v), pgtype.BinaryFormatCode, v, big[:0])
			require.NoError(t, err)
		})
		require.Zero(t, allocs, "%T", v)
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
	plain := pgtype.NewMap()
	require.Greater(t, testing.AllocsPerRun(100, func() {
		_, _ = plain.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, value, buf[:0])
	}), 2.0, "pgx's own encoding of a uuid.UUID got cheap: this codec may no longer be needed")

	var got uuid.UUID
	require.NoError(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, id[:], &got))
	require.Equal(t, id, got)
	require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, nil, &got))
	require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, id[:8], &got))
}

func oidOf(v any) uint32 {
	if _, ok := v.([]uuid.UUID); ok {
		return pgtype.UUIDArrayOID
	}
	return pgtype.ByteaArrayOID
}

// The uuid[] scan reads bytes from the server: whatever they are, it returns an error or
// the ids they encode, and what it returns encodes back to the same bytes.
func FuzzScanUUIDArray(f *testing.F) {
	for _, ids := range [][]uuid.UUID{nil, {}, {uuid.New()}, {uuid.New(), uuid.New(), uuid.New()}} {
		b, _ := encodeUUIDArray{}.Encode(ids, nil)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x0b, 0x86, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x0b, 0x86})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ids []uuid.UUID
		if err := (scanUUIDArray{}).Scan(b, &ids); err != nil || b == nil {
			return
		}
		again, err := encodeUUIDArray{}.Encode(ids, nil)
		require.NoError(t, err)
		var back []uuid.UUID
		require.NoError(t, (scanUUIDArray{}).Scan(again, &back))
		require.Equal(t, ids, back)
	})
}
