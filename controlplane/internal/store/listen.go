package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backoff bounds for re-establishing a LISTEN connection.
const (
	listenMinBackoff = 250 * time.Millisecond
	listenMaxBackoff = 30 * time.Second
)

// KeepListening runs listen until ctx is done, calling it again with jittered exponential
// backoff whenever it returns. listen holds one LISTEN connection; it reports whether it got
// connected, which resets the backoff. name says what listens, in the log.
func KeepListening(ctx context.Context, logger *slog.Logger, name string, listen func(context.Context) (connected bool, err error)) {
	backoff := listenMinBackoff
	for {
		connected, err := listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = listenMinBackoff
		}
		wait := backoff/2 + rand.N(backoff)
		logger.Warn(name+" disconnected; reconnecting", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// Listen opens a dedicated connection (outside the pool, so it never starves queries) that
// LISTENs on channels. close closes it, even after ctx is done.
func (s *Store) Listen(ctx context.Context, channels ...string) (conn *pgx.Conn, close func(), err error) {
	conn, err = pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	registerTypes(conn.TypeMap())
	close = func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			close()
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
	}
	return conn, close, nil
}
