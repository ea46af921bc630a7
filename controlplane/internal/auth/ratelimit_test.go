package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable time source for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func limiterAt(c *clock, perAccount, perAddress int) *LoginLimiter {
	l := NewLoginLimiter(perAccount, perAddress, 10*time.Minute)
	l.now = c.now
	return l
}

func requireAllowed(t *testing.T, l *LoginLimiter, account, addr string) {
	t.Helper()
	wait, ok := l.Allow(account, addr)
	require.True(t, ok, "%s from %s should be allowed", account, addr)
	require.Zero(t, wait)
}

func requireRefused(t *testing.T, l *LoginLimiter, account, addr string, wantWait time.Duration) {
	t.Helper()
	wait, ok := l.Allow(account, addr)
	require.False(t, ok, "%s from %s should be refused", account, addr)
	require.Equal(t, wantWait, wait)
}

func TestLoginLimiterRefusesAnAccountUntilItsOldestFailureAgesOut(t *testing.T) {
	c := newClock()
	l := limiterAt(c, 3, 100)
	for range 3 {
		requireAllowed(t, l, "ann", "10.0.0.1")
		l.Failed("ann", "10.0.0.1")
		c.advance(time.Minute)
	}
	// Failures at 0, 1 and 2 minutes; now is 3 minutes: the first ages out at 10.
	requireRefused(t, l, "ann", "10.0.0.1", 7*time.Minute)
	requireRefused(t, l, "ann", "10.0.0.2", 7*time.Minute) // another address does not help
	requireAllowed(t, l, "bob", "10.0.0.1")

	c.advance(7*time.Minute - time.Nanosecond)
	requireRefused(t, l, "ann", "10.0.0.1", time.Nanosecond)
	c.advance(time.Nanosecond)
	requireAllowed(t, l, "ann", "10.0.0.1")

	// One more failure fills the window again, until the second-oldest ages out at 11.
	l.Failed("ann", "10.0.0.1")
	requireRefused(t, l, "ann", "10.0.0.1", time.Minute)
}

func TestLoginLimiterRefusesAnAddressGuessingAcrossAccounts(t *testing.T) {
	c := newClock()
	l := limiterAt(c, 3, 5)
	for i := range 5 {
		l.Failed(fmt.Sprintf("user%d", i), "10.0.0.1")
	}
	requireRefused(t, l, "somebody-new", "10.0.0.1", 10*time.Minute)
	requireAllowed(t, l, "somebody-new", "10.0.0.2")
	c.advance(10 * time.Minute)
	requireAllowed(t, l, "somebody-new", "10.0.0.1")
}

func TestLoginLimiterSuccessForgetsTheAccountsFailuresButNotTheAddresss(t *testing.T) {
	c := newClock()
	l := limiterAt(c, 3, 4)
	l.Failed("ann", "10.0.0.1")
	l.Failed("ann", "10.0.0.1")
	l.Succeeded("ann")
	l.Failed("ann", "10.0.0.1")
	l.Failed("ann", "10.0.0.1")
	requireAllowed(t, l, "ann", "10.0.0.9") // two account failures since the success, not four

	// But the address keeps all four: logging into an account of one's own must not reset a
	// guesser's budget.
	requireRefused(t, l, "bob", "10.0.0.1", 10*time.Minute)
}

func TestLoginLimiterAskingDoesNotCountAsFailing(t *testing.T) {
	c := newClock()
	l := limiterAt(c, 1, 1)
	for range 100 {
		requireAllowed(t, l, "ann", "10.0.0.1")
	}
}

func TestLoginLimiterForgetsOldEntries(t *testing.T) {
	c := newClock()
	l := limiterAt(c, 3, 3)
	for i := range 1000 {
		l.Failed(fmt.Sprintf("user%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	require.Len(t, l.failures, 2000)
	c.advance(10 * time.Minute)
	requireAllowed(t, l, "ann", "10.9.9.9")
	require.Empty(t, l.failures, "a window later, the memory is given back")
}

func TestLoginLimiterIsSafeForConcurrentUse(t *testing.T) {
	l := NewLoginLimiter(1000, 1000, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				account := fmt.Sprintf("user%d", i%10)
				l.Allow(account, fmt.Sprintf("10.0.0.%d", g))
				l.Failed(account, fmt.Sprintf("10.0.0.%d", g))
				if i%7 == 0 {
					l.Succeeded(account)
				}
			}
		}()
	}
	wg.Wait()
	for g := range 8 {
		wait, ok := l.Allow("fresh", fmt.Sprintf("10.0.0.%d", g))
		require.True(t, ok)
		require.Zero(t, wait)
	}
}
