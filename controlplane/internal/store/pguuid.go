package store

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Every id in this schema is a uuid, held in Go as a github.com/google/uuid UUID. pgx
// does not know that type: it would encode each one through driver.Valuer (format it as
// a string, fail to encode the string in binary, parse it back, encode that) and scan
// each one through sql.Scanner (format the 16 bytes as text, parse the text), a dozen
// allocations and an error value per id on nearly every query. registerUUID teaches a
// connection's type map to copy the 16 bytes both ways.

// registerUUID replaces the uuid type (and its array) in m by one whose codec handles
// uuid.UUID and *uuid.UUID directly and leaves every other Go type to pgx's own codec;
// where a parameter's type is not known (the simple protocol), uuid.UUID and
// []uuid.UUID are sent as uuid and uuid[].
func registerUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
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
