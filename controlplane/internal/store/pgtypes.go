package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Every id in this schema is a uuid, held in Go as a github.com/google/uuid UUID. pgx
// does not know that type: it would encode each one through driver.Valuer (format it as
// a string, fail to encode the string in binary, parse it back, encode that) and scan
// each one through sql.Scanner (format the 16 bytes as text, parse the text), a dozen
// allocations and an error value per id on nearly every query; and it encodes the batch
// writes' array parameters ([]uuid.UUID, [][]byte, []int64, []float64, []time.Time,
// []bool) through reflection, element by element. registerTypes teaches a connection's
// type map to copy the bytes instead.

// registerTypes replaces, in m, the uuid type by one whose codec handles uuid.UUID and
// *uuid.UUID directly, and the uuid[], bytea[], int8[], float4[], float8[], timestamptz[]
// and bool[] types by ones that encode those slices in the binary format in one pass (and
// scan uuid[] into []uuid.UUID); every other Go type is left to pgx's own codecs. Where a
// parameter's type is not known (the simple protocol), uuid.UUID and []uuid.UUID are sent
// as uuid and uuid[].
func registerTypes(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: uuidArrayCodec{
		arrayCodec[uuid.UUID]{&pgtype.ArrayCodec{ElementType: t}, encodeArray[uuid.UUID]{pgtype.UUIDOID, 16,
			func(b []byte, id uuid.UUID) []byte { return append(b, id[:]...) }}}}})
	if bytea, ok := m.TypeForOID(pgtype.ByteaOID); ok {
		m.RegisterType(&pgtype.Type{Name: "_bytea", OID: pgtype.ByteaArrayOID,
			Codec: byteaArrayCodec{&pgtype.ArrayCodec{ElementType: bytea}}})
	}
	// The metrics and report batches' other columns: fixed-width elements.
	registerArray(m, "_int8", pgtype.Int8ArrayOID, pgtype.Int8OID, 8,
		func(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) })
	registerArray(m, "_float4", pgtype.Float4ArrayOID, pgtype.Float4OID, 4,
		func(b []byte, v float64) []byte {
			return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(v)))
		})
	registerArray(m, "_float8", pgtype.Float8ArrayOID, pgtype.Float8OID, 8,
		func(b []byte, v float64) []byte { return binary.BigEndian.AppendUint64(b, math.Float64bits(v)) })
	registerArray(m, "_timestamptz", pgtype.TimestamptzArrayOID, pgtype.TimestamptzOID, 8,
		func(b []byte, v time.Time) []byte { return binary.BigEndian.AppendUint64(b, uint64(microsSinceY2K(v))) })
	registerArray(m, "_bool", pgtype.BoolArrayOID, pgtype.BoolOID, 1, func(b []byte, v bool) []byte {
		if v {
			return append(b, 1)
		}
		return append(b, 0)
	})
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
	m.RegisterDefaultPgType([]uuid.UUID(nil), "_uuid")
}

// registerArray replaces the array type name (oid) in m by one that encodes a []T in one
// pass, each element width bytes written by put; other Go types are left to pgx.
func registerArray[T any](m *pgtype.Map, name string, oid, elemOID uint32, width int, put func([]byte, T) []byte) {
	elem, ok := m.TypeForOID(elemOID)
	if !ok {
		return
	}
	m.RegisterType(&pgtype.Type{Name: name, OID: oid,
		Codec: arrayCodec[T]{&pgtype.ArrayCodec{ElementType: elem}, encodeArray[T]{elemOID, width, put}}})
}

// microsSinceY2K is t in timestamptz's binary form, as pgx writes it: microseconds since
// 2000-01-01 UTC, the nanoseconds beyond truncated.
func microsSinceY2K(t time.Time) int64 {
	const unixToY2K = 946_684_800 * 1_000_000
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - unixToY2K
}

type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	switch value.(type) {
	case uuid.UUID, *uuid.UUID:
		if format == pgtype.BinaryFormatCode {
			return encodeUUIDBinary{}
		}
		return encodeUUIDText{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok {
		if format == pgtype.BinaryFormatCode {
			return scanUUIDBinary{}
		}
		return scanUUIDText{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// uuidValue returns the id a uuid.UUID or *uuid.UUID holds; false for a nil pointer.
func uuidValue(value any) (uuid.UUID, bool) {
	switch v := value.(type) {
	case uuid.UUID:
		return v, true
	case *uuid.UUID:
		if v != nil {
			return *v, true
		}
	}
	return uuid.UUID{}, false
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	id, ok := uuidValue(value)
	if !ok {
		return nil, nil // NULL
	}
	return append(buf, id[:]...), nil
}

type encodeUUIDText struct{}

func (encodeUUIDText) Encode(value any, buf []byte) ([]byte, error) {
	id, ok := uuidValue(value)
	if !ok {
		return nil, nil
	}
	return append(buf, id.String()...), nil
}

var errNullUUID = errors.New("cannot scan NULL into *uuid.UUID")

type scanUUIDBinary struct{}

func (scanUUIDBinary) Scan(src []byte, dst any) error {
	if src == nil {
		return errNullUUID
	}
	if len(src) != 16 {
		return fmt.Errorf("invalid length for uuid: %d", len(src))
	}
	copy(dst.(*uuid.UUID)[:], src)
	return nil
}

type scanUUIDText struct{}

func (scanUUIDText) Scan(src []byte, dst any) error {
	if src == nil {
		return errNullUUID
	}
	id, err := uuid.ParseBytes(src)
	if err != nil {
		return err
	}
	*dst.(*uuid.UUID) = id
	return nil
}

// Arrays in the binary format: a header (dimensions, a has-nulls flag, the element type;
// then the length and lower bound of each dimension), then each element as its length
// (-1 for NULL) and its bytes.

const nullLength = 0xffffffff // -1 as an int32

// appendArrayHeader appends the header of a one-dimensional array of n elements (an
// empty array has no dimension).
func appendArrayHeader(buf []byte, elem uint32, n int, hasNull bool) []byte {
	if n == 0 {
		buf = binary.BigEndian.AppendUint32(buf, 0)
		buf = binary.BigEndian.AppendUint32(buf, 0)
		return binary.BigEndian.AppendUint32(buf, elem)
	}
	buf = binary.BigEndian.AppendUint32(buf, 1)
	flags := uint32(0)
	if hasNull {
		flags = 1
	}
	buf = binary.BigEndian.AppendUint32(buf, flags)
	buf = binary.BigEndian.AppendUint32(buf, elem)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	return binary.BigEndian.AppendUint32(buf, 1) // lower bound
}

// arrayCodec encodes []T parameters of its array type with enc in the binary format and
// leaves everything else to pgx's ArrayCodec.
type arrayCodec[T any] struct {
	*pgtype.ArrayCodec
	enc encodeArray[T]
}

func (c arrayCodec[T]) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([]T); ok && format == pgtype.BinaryFormatCode {
		return c.enc
	}
	return c.ArrayCodec.PlanEncode(m, oid, format, value)
}

// encodeArray writes a []T as a one-dimensional array of elem, whose elements are all width
// bytes long (none NULL); a nil slice is NULL.
type encodeArray[T any] struct {
	elem  uint32
	width int
	put   func([]byte, T) []byte
}

func (e encodeArray[T]) Encode(value any, buf []byte) ([]byte, error) {
	vs := value.([]T)
	if vs == nil {
		return nil, nil // NULL
	}
	buf = slices.Grow(buf, 20+(4+e.width)*len(vs))
	buf = appendArrayHeader(buf, e.elem, len(vs), false)
	for _, v := range vs {
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.width))
		buf = e.put(buf, v)
	}
	return buf, nil
}

// uuidArrayCodec also scans uuid[] into []uuid.UUID in one pass.
type uuidArrayCodec struct{ arrayCodec[uuid.UUID] }

func (c uuidArrayCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*[]uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDArray{}
	}
	return c.ArrayCodec.PlanScan(m, oid, format, target)
}

type scanUUIDArray struct{}

func (scanUUIDArray) Scan(src []byte, dst any) error {
	out := dst.(*[]uuid.UUID)
	if src == nil {
		*out = nil
		return nil
	}
	if len(src) < 12 {
		return fmt.Errorf("uuid[]: %d bytes, too short for an array", len(src))
	}
	switch ndim := binary.BigEndian.Uint32(src); {
	case ndim == 0:
		*out = []uuid.UUID{}
		return nil
	case ndim != 1:
		return fmt.Errorf("uuid[]: %d dimensions, want 1", ndim)
	case len(src) < 20:
		return fmt.Errorf("uuid[]: %d bytes, too short for an array", len(src))
	}
	n := int(binary.BigEndian.Uint32(src[12:]))
	rest := src[20:]
	if n < 0 || n > len(rest)/4 {
		return fmt.Errorf("uuid[]: %d bytes for %d elements", len(rest), n)
	}
	ids := make([]uuid.UUID, n)
	for i := range ids {
		if len(rest) < 4 {
			return fmt.Errorf("uuid[]: %d bytes for %d elements", len(src)-20, n)
		}
		l := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if l == nullLength {
			return errors.New("uuid[]: cannot scan a NULL element into uuid.UUID")
		}
		if l != 16 || len(rest) < 16 {
			return fmt.Errorf("uuid[]: element of %d bytes", l)
		}
		copy(ids[i][:], rest[:16])
		rest = rest[16:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("uuid[]: %d bytes after the last element", len(rest))
	}
	*out = ids
	return nil
}

type byteaArrayCodec struct{ *pgtype.ArrayCodec }

func (c byteaArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([][]byte); ok && format == pgtype.BinaryFormatCode {
		return encodeByteaArray{}
	}
	return c.ArrayCodec.PlanEncode(m, oid, format, value)
}

type encodeByteaArray struct{}

func (encodeByteaArray) Encode(value any, buf []byte) ([]byte, error) {
	bs := value.([][]byte)
	if bs == nil {
		return nil, nil // NULL
	}
	size, hasNull := 20, false
	for _, b := range bs {
		size += 4 + len(b)
		hasNull = hasNull || b == nil
	}
	buf = slices.Grow(buf, size)
	buf = appendArrayHeader(buf, pgtype.ByteaOID, len(bs), hasNull)
	for _, b := range bs {
		if b == nil {
			buf = binary.BigEndian.AppendUint32(buf, nullLength)
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	return buf, nil
}
