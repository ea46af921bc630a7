package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
)

// Bulk seeding is the one place outside the store that writes SQL: COPY of generated rows
// has no business in the store's typed API, and it only ever touches the benchmark database.

// caller is one client's identity: a user with a live session, and the organization it owns.
type caller struct {
	UserID uuid.UUID
	OrgID  uuid.UUID
	Token  string
}

// seeded is what the load needs from the seed.
type seeded struct {
	Callers []caller
}

// extraRoles are the members every organization has besides its owner: the next users
// round the ring, so every user belongs to len(extraRoles)+1 organizations.
var extraRoles = []store.Role{store.RoleAdmin, store.RoleMember, store.RoleViewer}

// seed wipes the database (migrations down, then up) and fills it: cfg.Orgs users, each
// owning one organization with three more members, cfg.Activity events, and a session for
// each client's user.
func seed(ctx context.Context, cfg Config, logf func(string, ...any)) (*seeded, error) {
	// A wrong URL must not wipe a real database.
	pgCfg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("seed: parse database url: %w", err)
	}
	if !strings.Contains(pgCfg.Database, "bench") {
		return nil, fmt.Errorf("seed: refusing to wipe database %q: a benchmark database's name contains \"bench\"", pgCfg.Database)
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	start := time.Now()
	if _, err := st.MigrateDown(ctx, 0); err != nil {
		return nil, fmt.Errorf("seed: reset: %w", err)
	}
	if _, err := st.MigrateUp(ctx); err != nil {
		return nil, fmt.Errorf("seed: reset: %w", err)
	}
	logf("reset the schema in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	// Everyone shares one real, production-cost hash: sign-in is not measured, and hashing
	// ten thousand passwords would take minutes.
	hash, err := auth.HashPassword("benchmark-password", auth.DefaultPasswordParams())
	if err != nil {
		return nil, err
	}
	n := cfg.Orgs
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2)) // the same data every run
	users := make([]uuid.UUID, n)
	orgs := make([]uuid.UUID, n)
	for i := range n {
		users[i], orgs[i] = uuid.New(), uuid.New()
	}
	email := func(i int) string { return fmt.Sprintf("bench-%06d@example.com", i) }
	// Accounts and organizations appeared over the past year, in order.
	created := func(i int) time.Time { return now.Add(-365 * 24 * time.Hour * time.Duration(n-i) / time.Duration(n)) }

	conn, err := st.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer conn.Release()
	copyRows := func(table string, cols []string, count int, row func(i int) []any) error {
		_, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(count, func(i int) ([]any, error) {
			return row(i), nil
		}))
		if err != nil {
			return fmt.Errorf("seed %s: %w", table, err)
		}
		return nil
	}
	if err := copyRows("users", []string{"id", "email", "display_name", "password_hash", "password_changed_at", "created_at"}, n,
		func(i int) []any {
			return []any{users[i], email(i), fmt.Sprintf("Bench User %d", i), hash, created(i), created(i)}
		}); err != nil {
		return nil, err
	}
	if err := copyRows("organizations", []string{"id", "name", "slug", "created_at"}, n, func(i int) []any {
		return []any{orgs[i], fmt.Sprintf("Bench Org %06d", i), fmt.Sprintf("bench-org-%06d", i), created(i)}
	}); err != nil {
		return nil, err
	}
	per := len(extraRoles) + 1
	if err := copyRows("memberships", []string{"organization_id", "user_id", "role", "created_at"}, n*per, func(k int) []any {
		i, j := k/per, k%per
		if j == 0 {
			return []any{orgs[i], users[i], store.RoleOwner, created(i)}
		}
		return []any{orgs[i], users[(i+j)%n], extraRoles[j-1], created(i).Add(time.Duration(j) * time.Hour)}
	}); err != nil {
		return nil, err
	}

	// Half the events are spread evenly; the other half favour a few busy organizations
	// (organization i's share falls with sqrt(i)), so some activity pages are full. Events
	// are written oldest first, so ids grow with time as they do in production.
	eventTypes := []string{"organization.renamed", "organization.member.added", "organization.member.role_changed",
		"organization.invitation.created", "apitoken.created", "auth.logged_in"}
	span := 90 * 24 * time.Hour
	if err := copyRows("activity_events", []string{"organization_id", "actor_kind", "actor_user_id", "actor_email",
		"event_type", "entity_type", "entity_id", "ip", "user_agent", "metadata", "created_at"}, cfg.Activity,
		func(k int) []any {
			i := k % n
			if k%2 == 1 {
				r := rng.Float64()
				i = int(float64(n) * r * r)
			}
			typ := eventTypes[rng.IntN(len(eventTypes))]
			at := now.Add(-span + span*time.Duration(k)/time.Duration(max(cfg.Activity, 1)))
			return []any{orgs[i], store.ActorUser, users[i], email(i), typ, "organization", orgs[i].String(),
				"203.0.113.7", "Mozilla/5.0 (skypanel-bench)", map[string]string{"via": "bench", "seq": fmt.Sprint(k)}, at}
		}); err != nil {
		return nil, err
	}

	// One session per client, for users spread over the whole range.
	out := &seeded{}
	sessions := make([]uuid.UUID, cfg.Clients)
	hashes := make([][]byte, cfg.Clients)
	for c := range cfg.Clients {
		i := c * n / cfg.Clients
		secret, h := auth.NewToken(auth.KindAccess)
		sessions[c], hashes[c] = uuid.New(), h
		out.Callers = append(out.Callers, caller{UserID: users[i], OrgID: orgs[i], Token: secret})
	}
	expires := now.Add(24 * time.Hour)
	if err := copyRows("sessions", []string{"id", "user_id", "ip", "user_agent", "expires_at"}, cfg.Clients, func(c int) []any {
		return []any{sessions[c], out.Callers[c].UserID, "127.0.0.1", "skypanel-bench", expires}
	}); err != nil {
		return nil, err
	}
	if err := copyRows("access_tokens", []string{"token_hash", "session_id", "expires_at"}, cfg.Clients, func(c int) []any {
		return []any{hashes[c], sessions[c], expires}
	}); err != nil {
		return nil, err
	}
	logf("seeded %d users and organizations, %d memberships, %d activity events, %d sessions in %s",
		n, n*per, cfg.Activity, cfg.Clients, time.Since(start).Round(time.Millisecond))

	// Fresh statistics, as autovacuum would have them on a database that grew slowly.
	start = time.Now()
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, fmt.Errorf("seed: vacuum analyze: %w", err)
	}
	logf("vacuum analyze in %s", time.Since(start).Round(time.Millisecond))
	return out, nil
}
