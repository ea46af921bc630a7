// Package store is the only package that talks to Postgres. It owns the connection pool, the
// migrator, and one typed method per query; callers never see SQL. Reads go through the Store,
// writes through a Queries value bound to a transaction (see InTx), so a change and the
// activity row that records it commit together.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors; the API layer maps them to Connect codes.
var (
	// ErrNotFound means no row matched (or the caller may not see it).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique constraint refused the change.
	ErrConflict = errors.New("conflict")
)

// DBTX is what a query needs: a pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store holds the connection pool.
type Store struct {
	pool *pgxpool.Pool
	*Queries
}

// Options configures Open.
type Options struct {
	// URL is a postgres:// connection URL.
	URL string
	// MaxConns caps the pool; 0 keeps pgx's default (max(4, CPUs)).
	MaxConns int32
}

// Open connects to Postgres and checks the connection.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("open store: parse database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerTypes(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: ping: %w", err)
	}
	return &Store{pool: pool, Queries: &Queries{db: pool}}, nil
}

// Pool returns the pgx pool, for libraries that need it (river's driver).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Queries runs the typed queries on a pool or inside a transaction.
type Queries struct {
	db DBTX
	tx pgx.Tx
}

// Tx returns the transaction the queries run in, or nil outside InTx. River's InsertTx
// uses it to enqueue jobs in the same transaction as the change that causes them.
func (q *Queries) Tx() pgx.Tx { return q.tx }

// InTx runs fn in one transaction, committing when fn returns nil and rolling back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(q *Queries) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if err := fn(&Queries{db: tx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// mapErr turns driver errors into the store's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
		case "22P02": // invalid_text_representation, e.g. a malformed uuid
			return ErrNotFound
		}
	}
	return err
}
