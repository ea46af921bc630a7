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

// A request that waits for an upstream's first resolution, while lookups of the name get no
// answer, keeps the resolver looking: it gets the task's address soon after the name
// resolves, not at the next interval.
func TestARequestWaitingForTheFirstResolutionKeepsLookupsGoing(t *testing.T) {
	var (
		lookups atomic.Int32
		exists  atomic.Bool
	)
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		if exists.Load() {
			return []netip.Addr{netip.MustParseAddr("10.0.0.7")}, nil
		}
		<-ctx.Done() // no answer
		return nil, ctx.Err()
	}
	u, err := newUpstream("app.internal:8080", time.Hour, resolve, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	for lookups.Load() == 0 {
		time.Sleep(time.Millisecond) // the first lookup is under way
	}

	got := make(chan []*backend, 1)
	go func() { got <- u.list(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for lookups.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups while a request waited, want more", lookups.Load())
		}
		time.Sleep(time.Millisecond) // the request keeps lookups going
	}
	exists.Store(true)
	select {
	case bs := <-got:
		if len(bs) != 1 || bs[0].addr != "10.0.0.7:8080" {
			t.Fatalf("the waiting request got %d backends, want 10.0.0.7:8080", len(bs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request never got the task's address")
	}
}
