package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Every id in this schema is a uuid, held in Go as a github.com/google/uuid UUID. pgx
// does not know that type: it would encode each one through driver.Valuer (format it as
// a string, fail to encode the string in binary, parse it back, encode that) and scan
// each one through sql.Scanner (format the 16 bytes as text, parse the text), a dozen
// allocations and an error value per id on nearly every query; and it would encode a
// []uuid.UUID or a [][]byte (the batch writes' parameters) through reflection, element
// by element. registerTypes teaches a connection's type map to copy the bytes instead.

// registerTypes replaces, in m, the uuid type by one whose codec handles uuid.UUID and
// *uuid.UUID directly, and the uuid[] and bytea[] types by ones that encode []uuid.UUID
// and [][]byte (and scan uuid[] into []uuid.UUID) in one pass; every other Go type is
// left to pgx's own codecs. Where a parameter's type is not known (the simple protocol),
// uuid.UUID and []uuid.UUID are sent as uuid and uuid[].
func registerTypes(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID,
		Codec: uuidArrayCodec{&pgtype.ArrayCodec{ElementType: t}}})
	if bytea, ok := m.TypeForOID(pgtype.ByteaOID); ok {
		m.RegisterType(&pgtype.Type{Name: "_bytea", OID: pgtype.ByteaArrayOID,
			Codec: byteaArrayCodec{&pgtype.ArrayCodec{ElementType: bytea}}})
	}
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
	m.RegisterDefaultPgType([]uuid.UUID(nil), "_uuid")
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

type uuidArrayCodec struct{ *pgtype.ArrayCodec }

func (c uuidArrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.([]uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDArray{}
	}
	return c.ArrayCodec.PlanEncode(m, oid, format, value)
}

func (c uuidArrayCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*[]uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDArray{}
	}
	return c.ArrayCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDArray struct{}

func (encodeUUIDArray) Encode(value any, buf []byte) ([]byte, error) {
	ids := value.([]uuid.UUID)
	if ids == nil {
		return nil, nil // NULL
	}
	buf = slices.Grow(buf, 20+20*len(ids))
	buf = appendArrayHeader(buf, pgtype.UUIDOID, len(ids), false)
	for _, id := range ids {
		buf = binary.BigEndian.AppendUint32(buf, 16)
		buf = append(buf, id[:]...)
	}
	return buf, nil
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
