package edge

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// While an upstream has no address, a lookup that gets no answer (Docker's DNS, for a name
// it does not know yet) is given up after resolveTimeoutNoAddrs, so the next one, which a
// request asks for at once, finds the task soon after it exists. Once there are addresses,
// lookups get the full timeout.
func TestLookupsAreCutShortWhileAnUpstreamHasNoAddress(t *testing.T) {
	var (
		mu      sync.Mutex
		budgets []time.Duration // the time each lookup was given
		exists  atomic.Bool
	)
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) {
		dl, _ := ctx.Deadline()
		mu.Lock()
		budgets = append(budgets, time.Until(dl))
		mu.Unlock()
		if exists.Load() {
			return []netip.Addr{netip.MustParseAddr("10.0.0.7")}, nil
		}
		<-ctx.Done() // no answer
		return nil, ctx.Err()
	}
	lookups := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), budgets...)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	u, err := newUpstream("app.internal:8080", time.Hour, resolve, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	waitUntil("two lookups", func() bool {
		u.resolveSoon() // as requests do while there is no address
		return len(lookups()) >= 2
	})
	for i, b := range lookups() {
		if b > resolveTimeoutNoAddrs {
			t.Fatalf("lookup %d without addresses was given %s, want at most %s", i, b, resolveTimeoutNoAddrs)
		}
	}

	exists.Store(true)
	waitUntil("the task's address", func() bool {
		u.resolveSoon()
		p := u.backends.Load()
		return p != nil && len(*p) == 1
	})
	n := len(lookups())
	u.resolveSoon()
	waitUntil("a lookup with an address known", func() bool { return len(lookups()) > n })
	if b := lookups()[n]; b <= resolveTimeoutNoAddrs {
		t.Fatalf("a lookup with an address known was given %s, want the full %s", b, resolveTimeout)
	}
}
