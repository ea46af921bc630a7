package edge

import (
	"context"
	"log/slog"
	"net"
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
	u, err := newUpstream("app.internal:8080", time.Hour, resolve, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	eventually(t, "two lookups", func() bool {
		u.resolveSoon() // as requests do while there is no address
		return len(lookups()) >= 2
	})
	for i, b := range lookups() {
		if b > resolveTimeoutNoAddrs {
			t.Fatalf("lookup %d without addresses was given %s, want at most %s", i, b, resolveTimeoutNoAddrs)
		}
	}

	exists.Store(true)
	eventually(t, "the task's address", func() bool {
		u.resolveSoon()
		p := u.backends.Load()
		return p != nil && len(*p) == 1
	})
	n := len(lookups())
	u.resolveSoon()
	eventually(t, "a lookup with an address known", func() bool { return len(lookups()) > n })
	if b := lookups()[n]; b <= resolveTimeoutNoAddrs {
		t.Fatalf("a lookup with an address known was given %s, want the full %s", b, resolveTimeout)
	}
}

// A request that waits for an upstream's first resolution, while lookups of the name get no
// answer, keeps the resolver looking, with lookups overlapping: it gets the task's address
// soon after the name resolves, not at the next interval nor after the lookups asked before.
// Once no request waits, the lookups stop until the next interval.
func TestARequestWaitingForTheFirstResolutionKeepsLookupsGoing(t *testing.T) {
	var (
		lookups, inFlight, most atomic.Int32
		exists                  atomic.Bool
	)
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
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
	eventually(t, "the first lookup", func() bool { return lookups.Load() > 0 })

	// A request that gives up: lookups go on while it waits, and stop once it left.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if bs := u.list(ctx); bs != nil {
		t.Fatalf("a request got %d backends of a name nobody answers for", len(bs))
	}
	cancel()
	if n := lookups.Load(); n < 3 {
		t.Fatalf("%d lookups while a request waited 500ms, want more", n)
	}
	time.Sleep(lookupEvery + resolveTimeoutNoAddrs) // the lookups in flight end
	stopped := lookups.Load()
	time.Sleep(lookupEvery + resolveTimeoutNoAddrs)
	if n := lookups.Load(); n != stopped {
		t.Fatalf("%d lookups started after no request waited any more", n-stopped)
	}

	got := make(chan []*backend, 1)
	go func() { got <- u.list(context.Background()) }()
	eventually(t, "lookups for a waiting request", func() bool { return lookups.Load() >= stopped+6 })
	if m := most.Load(); m < 2 || m > int32(resolveTimeoutNoAddrs/lookupEvery) {
		t.Fatalf("at most %d lookups at a time while a request waited, want 2 to %d", m, resolveTimeoutNoAddrs/lookupEvery)
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

// Overlapping lookups of one name each ask the name server themselves: none waits on a
// query another asked earlier, which Docker's DNS may never answer.
func TestOverlappingLookupsEachAskTheNameServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var queries atomic.Int32
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			queries.Add(1) // and no answer
		}
	}()
	var d net.Dialer
	lookup := lookupAlone(func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	})
	ask := func(n int) int32 {
		before := queries.Load()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				time.Sleep(time.Duration(i) * 20 * time.Millisecond) // started while the others wait
				if _, err := lookup(ctx, "app.internal"); err == nil {
					t.Error("a lookup nobody answered succeeded")
				}
			}()
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // the last queries reach the server
		return queries.Load() - before
	}
	alone := ask(1)
	if alone == 0 {
		t.Fatal("a lookup sent no query")
	}
	if together := ask(3); together < 3*alone {
		t.Fatalf("3 overlapping lookups sent %d queries, want %d (%d each, as one alone)", together, 3*alone, alone)
	}
}
