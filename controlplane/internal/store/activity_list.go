package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrInvalidPageToken means a page token was not one this store handed out; the API layer
// reports it as bad input on the request's page_token field.
var ErrInvalidPageToken = errors.New("invalid page token")

// Page sizes of every paginated listing.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// clampPageSize clamps a requested page size: 0 (or less) means DefaultPageSize, and no page holds
// more than MaxPageSize.
func clampPageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// ActivityFilter narrows an activity listing. Zero fields match everything.
type ActivityFilter struct {
	// EventTypes matches events whose type equals one of these, or starts with one that ends
	// in "." ("organization." matches every organization event).
	EventTypes  []string
	ActorUserID *uuid.UUID
	EntityType  string
	EntityID    string
	// Since and Until bound created_at: Since <= created_at < Until.
	Since *time.Time
	Until *time.Time
}

const activityColumns = `id, organization_id, actor_kind, actor_user_id, actor_email, actor_token_id,
	event_type, entity_type, entity_id, ip, user_agent, metadata, created_at`

func scanActivityEvent(row interface{ Scan(...any) error }) (ActivityEvent, error) {
	var e ActivityEvent
	err := row.Scan(&e.ID, &e.OrganizationID, &e.ActorKind, &e.ActorUserID, &e.ActorEmail, &e.ActorTokenID,
		&e.EventType, &e.EntityType, &e.EntityID, &e.IP, &e.UserAgent, &e.Metadata, &e.CreatedAt)
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	return e, mapErr(err)
}

// ActivityByID returns one event.
func (q *Queries) ActivityByID(ctx context.Context, id int64) (ActivityEvent, error) {
	return scanActivityEvent(q.db.QueryRow(ctx, `SELECT `+activityColumns+` FROM activity_events WHERE id = $1`, id))
}

// ListActivity lists events newest first (by id), a page at a time. orgID narrows the listing
// to one organization; nil lists every event, platform-wide ones included, and is for platform
// admins only. cursor is the next page token of the previous page ("" for the first); the
// returned token is "" on the last page. A cursor this store did not make is
// ErrInvalidPageToken.
func (q *Queries) ListActivity(ctx context.Context, orgID *uuid.UUID, f ActivityFilter, size int, cursor string) ([]ActivityEvent, string, error) {
	size = clampPageSize(size)
	var w whereBuilder
	if orgID != nil {
		w.add("organization_id = $%d", *orgID)
	}
	if cursor != "" {
		before, err := decodeIDCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		w.add("id < $%d", before)
	}
	if len(f.EventTypes) > 0 {
		var exact, prefixes []string
		for _, t := range f.EventTypes {
			if strings.HasSuffix(t, ".") {
				prefixes = append(prefixes, escapeLikePattern(t)+"%")
			} else {
				exact = append(exact, t)
			}
		}
		var or []string
		if len(exact) > 0 {
			or = append(or, w.arg("event_type = ANY($%d)", exact))
		}
		if len(prefixes) > 0 {
			or = append(or, w.arg("event_type LIKE ANY($%d)", prefixes))
		}
		w.conds = append(w.conds, "("+strings.Join(or, " OR ")+")")
	}
	if f.ActorUserID != nil {
		w.add("actor_user_id = $%d", *f.ActorUserID)
	}
	if f.EntityType != "" {
		w.add("entity_type = $%d", f.EntityType)
	}
	if f.EntityID != "" {
		w.add("entity_id = $%d", f.EntityID)
	}
	if f.Since != nil {
		w.add("created_at >= $%d", *f.Since)
	}
	if f.Until != nil {
		w.add("created_at < $%d", *f.Until)
	}
	// One row more than the page tells whether there is a next page.
	limit := w.arg("$%d", size+1)
	rows, err := q.db.Query(ctx, `SELECT `+activityColumns+` FROM activity_events`+w.sql()+
		` ORDER BY id DESC LIMIT `+limit, w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list activity: %w", mapErr(err))
	}
	defer rows.Close()
	var events []ActivityEvent
	for rows.Next() {
		e, err := scanActivityEvent(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list activity: %w", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list activity: %w", mapErr(err))
	}
	next := ""
	if len(events) > size {
		events = events[:size]
		next = encodeIDCursor(events[size-1].ID)
	}
	return events, next, nil
}

// LatestActivityID returns the id of the newest event, or 0 when there is none. A listener
// takes it as the point it delivers events from.
func (q *Queries) LatestActivityID(ctx context.Context) (int64, error) {
	var id int64
	err := q.db.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM activity_events`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("latest activity id: %w", mapErr(err))
	}
	return id, nil
}

// ActivityAfter returns up to limit events with ids above afterID, oldest first: what a
// listener missed while its connection was down.
func (q *Queries) ActivityAfter(ctx context.Context, afterID int64, limit int) ([]ActivityEvent, error) {
	rows, err := q.db.Query(ctx, `SELECT `+activityColumns+` FROM activity_events WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("activity after %d: %w", afterID, mapErr(err))
	}
	defer rows.Close()
	var events []ActivityEvent
	for rows.Next() {
		e, err := scanActivityEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("activity after %d: %w", afterID, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activity after %d: %w", afterID, mapErr(err))
	}
	return events, nil
}

// whereBuilder builds a WHERE clause from conditions with positional arguments: input only ever
// travels as an argument, never inside the SQL text.
type whereBuilder struct {
	conds []string
	args  []any
}

// arg binds v as the next argument and returns format with its position ("$%d") filled in.
func (w *whereBuilder) arg(format string, v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf(format, len(w.args))
}

// add adds a condition with one argument.
func (w *whereBuilder) add(format string, v any) { w.conds = append(w.conds, w.arg(format, v)) }

func (w *whereBuilder) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// escapeLikePattern makes s match itself literally in a LIKE pattern (whose escape is backslash).
func escapeLikePattern(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Page tokens are opaque to callers: base64url of a versioned string, so their format can
// change without breaking a client that kept one across an upgrade (it gets
// ErrInvalidPageToken, not a wrong page).
var pageTokenEncoding = base64.RawURLEncoding

func encodeIDCursor(id int64) string {
	return pageTokenEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(id, 10)))
}

func decodeIDCursor(token string) (int64, error) {
	b, err := pageTokenEncoding.DecodeString(token)
	if err != nil {
		return 0, ErrInvalidPageToken
	}
	rest, ok := strings.CutPrefix(string(b), "v1:")
	if !ok {
		return 0, ErrInvalidPageToken
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrInvalidPageToken
	}
	return id, nil
}

// encodeTimeIDCursor and decodeTimeIDCursor are the page tokens of listings ordered by
// (created_at DESC, id DESC). Microseconds are Postgres's precision, so the round trip is exact.
func encodeTimeIDCursor(t time.Time, id uuid.UUID) string {
	return pageTokenEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(t.UnixMicro(), 10) + ":" + id.String()))
}

func decodeTimeIDCursor(token string) (time.Time, uuid.UUID, error) {
	b, err := pageTokenEncoding.DecodeString(token)
	if err != nil {
		return time.Time{}, uuid.Nil, ErrInvalidPageToken
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return time.Time{}, uuid.Nil, ErrInvalidPageToken
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return time.Time{}, uuid.Nil, ErrInvalidPageToken
	}
	id, err := uuid.Parse(parts[2])
	if err != nil {
		return time.Time{}, uuid.Nil, ErrInvalidPageToken
	}
	return time.UnixMicro(micros), id, nil
}
