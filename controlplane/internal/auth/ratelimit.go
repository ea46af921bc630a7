package auth

import (
	"sync"
	"time"
)

// LoginLimiter throttles failed log-ins per account and per client address: after too many
// failures within the window, further attempts are refused until the oldest failure ages out.
// Counting only failures means a user who types the password right is never slowed down,
// while guessing is capped at perAccount tries per window for one account and perAddress for
// one address across accounts.
//
// The counts live in memory: with several control-plane replicas each enforces its own share,
// which multiplies the cap by the replica count but keeps log-in off the database's hot path.
type LoginLimiter struct {
	perAccount, perAddress int
	window                 time.Duration
	now                    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time // key: "a:"+account or "i:"+address; oldest first
	sweepAt  time.Time
}

// NewLoginLimiter returns a limiter allowing perAccount and perAddress failures per window.
func NewLoginLimiter(perAccount, perAddress int, window time.Duration) *LoginLimiter {
	return &LoginLimiter{perAccount: perAccount, perAddress: perAddress, window: window, now: time.Now,
		failures: map[string][]time.Time{}}
}

// Allow reports whether a log-in for account from addr may be tried now, and if not, how long
// until it may.
func (l *LoginLimiter) Allow(account, addr string) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	wait := max(l.wait("a:"+account, l.perAccount, now), l.wait("i:"+addr, l.perAddress, now))
	return wait, wait == 0
}

// Failed records a failed log-in.
func (l *LoginLimiter) Failed(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range []string{"a:" + account, "i:" + addr} {
		l.failures[k] = append(l.recent(k, now), now)
	}
}

// Succeeded forgets the account's failures (not the address's: a guesser who owns one account
// must not reset their budget by logging into it).
func (l *LoginLimiter) Succeeded(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, "a:"+account)
}

func (l *LoginLimiter) recent(key string, now time.Time) []time.Time {
	ts := l.failures[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	return ts[i:]
}

func (l *LoginLimiter) wait(key string, limit int, now time.Time) time.Duration {
	ts := l.recent(key, now)
	l.failures[key] = ts
	if len(ts) < limit {
		if len(ts) == 0 {
			delete(l.failures, key)
		}
		return 0
	}
	// Allowed again when enough of the oldest failures have aged out.
	return ts[len(ts)-limit].Add(l.window).Sub(now)
}

// sweep drops expired entries now and then, so the map does not grow with every address seen.
func (l *LoginLimiter) sweep(now time.Time) {
	if now.Before(l.sweepAt) {
		return
	}
	l.sweepAt = now.Add(l.window)
	for k := range l.failures {
		if len(l.recent(k, now)) == 0 {
			delete(l.failures, k)
		}
	}
}
