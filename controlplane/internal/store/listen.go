package store

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
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
