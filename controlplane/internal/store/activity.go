package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ActivityChannel is the Postgres NOTIFY channel that announces each new activity event; the
// payload is the event id. Notifications are sent on commit, so listeners never see an event
// whose transaction rolled back.
const ActivityChannel = "skypanel_activity"

// ActorKind says who made a change; the numbers are the API's ActorKind enum.
type ActorKind int16

// Actor kinds.
const (
	ActorUser     ActorKind = 1
	ActorAPIToken ActorKind = 2
	ActorSystem   ActorKind = 3
)

// ActivityEvent is one row of the activity log.
type ActivityEvent struct {
	ID             int64
	OrganizationID *uuid.UUID
	ActorKind      ActorKind
	ActorUserID    *uuid.UUID
	ActorEmail     string
	ActorTokenID   *uuid.UUID
	EventType      string
	EntityType     string
	EntityID       string
	IP             string
	UserAgent      string
	Metadata       map[string]string
	CreatedAt      time.Time
}

// InsertActivity records an event in the current transaction and announces it on
// ActivityChannel when that transaction commits.
func (q *Queries) InsertActivity(ctx context.Context, e ActivityEvent) (int64, error) {
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	meta, err := json.Marshal(e.Metadata)
	if err != nil {
		return 0, fmt.Errorf("insert activity: %w", err)
	}
	var id int64
	err = q.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO activity_events (organization_id, actor_kind, actor_user_id, actor_email,
				actor_token_id, event_type, entity_type, entity_id, ip, user_agent, metadata)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			RETURNING id)
		SELECT ins.id FROM ins CROSS JOIN LATERAL (SELECT pg_notify($12, ins.id::text)) AS notified`,
		e.OrganizationID, e.ActorKind, e.ActorUserID, e.ActorEmail, e.ActorTokenID, e.EventType,
		e.EntityType, e.EntityID, e.IP, e.UserAgent, meta, ActivityChannel).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert activity: %w", mapErr(err))
	}
	return id, nil
}
