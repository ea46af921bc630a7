package store

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

func TestRegisteredUUIDsEncodeWithoutAllocating(t *testing.T) {
	m := pgtype.NewMap()
	registerUUID(m)
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
