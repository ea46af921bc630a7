package edge

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Tuning of the upstream side. They are constants, not configuration: they follow from
// how Swarm's dnsrr service discovery behaves, not from what an app needs.
const (
	// dialTimeout bounds connecting to one task address. A task that went away on an
	// overlay network usually refuses at once; an address nobody holds any more can
	// hang until ARP gives up, so keep this short: the request moves on to another
	// address.
	dialTimeout = 3 * time.Second
	// badFor is how long an address that refused a connection is skipped.
	badFor = 5 * time.Second
	// maxIdlePerBackend caps the keep-alive connections kept per task address: enough
	// for every client connection of a busy edge to find one.
	maxIdlePerBackend = 1024
	// idleTimeout closes an upstream connection idle this long.
	idleTimeout = 30 * time.Second
	// checkIdleAfter: a pooled connection idle longer than this is checked for a close
	// from the app (one non-blocking peek) before a request is written on it.
	checkIdleAfter = time.Second
	upReadBuf      = 8 << 10
	upWriteBuf     = 4 << 10
)

// upstream is one Route.Upstream: a name re-resolved in the background, or a literal
// address, and the task addresses (backends) it currently stands for.
type upstream struct {
	key      string
	host     string
	port     int
	literal  bool
	resolve  func(ctx context.Context, host string) ([]netip.Addr, error)
	interval time.Duration
	log      *slog.Logger

	backends atomic.Pointer[[]*backend] // sorted by address
	next     atomic.Uint64              // round-robin position
	ready    chan struct{}              // closed after the first resolution
	readyOne sync.Once
	refresh  chan struct{} // asks the resolver to resolve now
	waiting  atomic.Int32  // requests waiting in list for the first resolution
	cancel   context.CancelFunc
	done     chan struct{}
}

// newUpstream starts resolving key ("name:port" or "ip:port") every interval until
// close.
func newUpstream(key string, interval time.Duration, resolve func(context.Context, string) ([]netip.Addr, error), log *slog.Logger) (*upstream, error) {
	host, port, err := splitUpstream(key)
	if err != nil {
		return nil, err
	}
	u := &upstream{
		key: key, host: host, port: port, resolve: resolve, interval: interval,
		log:     log.With("upstream", key),
		ready:   make(chan struct{}),
		refresh: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		u.literal = true
		u.setAddrs([]netip.Addr{ip})
		close(u.done)
		return u, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go u.run(ctx)
	return u, nil
}

func (u *upstream) run(ctx context.Context) {
	defer close(u.done)
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		if u.backends.Load() == nil && u.waiting.Load() > 0 {
			u.resolveForWaiters(ctx)
		} else {
			u.resolveOnce(ctx)
		}
		u.sweep()
		if u.backends.Load() == nil && u.waiting.Load() > 0 && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-u.refresh:
		}
	}
}

// Resolution timeouts. While an upstream has no address (an app just deployed, its first
// task starting) a lookup is cut short: Docker's DNS may not answer at all for a name it
// does not know yet (it forwards such names outside, which on an isolated node goes
// nowhere), and a lookup waiting out a long timeout would keep the edge blind to the task
// for that long after it runs (docs/benchmarks.md, deploy overhead). Requests meanwhile get
// the next lookup at once: those waiting for a first resolution (list) have lookups
// overlap (resolveForWaiters), and those that find no address ask for one (resolveSoon).
const (
	resolveTimeout        = 2 * time.Second
	resolveTimeoutNoAddrs = 200 * time.Millisecond
	// A new lookup starts every lookupEvery while requests wait for a first resolution,
	// up to resolveTimeoutNoAddrs/lookupEvery at a time.
	lookupEvery = 50 * time.Millisecond
)

func (u *upstream) resolveOnce(ctx context.Context) {
	timeout := resolveTimeout
	if p := u.backends.Load(); p == nil || len(*p) == 0 {
		timeout = resolveTimeoutNoAddrs
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	addrs, err := u.resolve(rctx, u.host)
	cancel()
	if !u.take(addrs, err) && ctx.Err() == nil {
		// A passing resolver failure: the addresses we know are kept.
		u.log.Warn("resolve upstream", "error", err)
	}
}

// resolveForWaiters looks the name up for requests waiting for its first resolution, until
// a lookup answers or no request waits any more. Lookups overlap, a new one every
// lookupEvery, so the first asked after Docker's DNS learns the name (gossip brings it
// there from the task's node) answers within lookupEvery of that, where one lookup at a
// time could be stuck for resolveTimeoutNoAddrs in one asked just before.
func (u *upstream) resolveForWaiters(ctx context.Context) {
	type answer struct {
		addrs []netip.Addr
		err   error
	}
	const most = int(resolveTimeoutNoAddrs / lookupEvery)
	answers := make(chan answer, most) // never blocks a lookup this returned before
	inFlight := 0
	lookup := func() {
		inFlight++
		go func() {
			rctx, cancel := context.WithTimeout(ctx, resolveTimeoutNoAddrs)
			defer cancel()
			addrs, err := u.resolve(rctx, u.host)
			answers <- answer{addrs, err}
		}()
	}
	t := time.NewTicker(lookupEvery)
	defer t.Stop()
	lookup()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-answers:
			inFlight--
			if u.take(a.addrs, a.err) {
				return
			}
		case <-t.C:
			if u.waiting.Load() == 0 {
				return
			}
			if inFlight < most {
				lookup()
			}
		}
	}
}

// lookupAlone returns a lookup whose every call stands alone. Through one net.Resolver,
// lookups of a name made at the same time share a single query, and that query outlives
// the deadline of the lookup that asked it as long as another waits on it: an upstream's
// overlapping lookups (resolveForWaiters) would all wait on the first one's query, which
// Docker's DNS may never answer, instead of asking again. dial is the resolver's Dial
// (nil: the system's name servers).
func lookupAlone(dial func(ctx context.Context, network, address string) (net.Conn, error)) func(context.Context, string) ([]netip.Addr, error) {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		r := &net.Resolver{PreferGo: dial != nil, Dial: dial}
		return r.LookupNetIP(ctx, "ip", host)
	}
}

// take installs a lookup's answer: the name's addresses, or none when it does not exist
// (the service has no task: scaled to zero, or gone). It reports false for a lookup that got
// no answer, which leaves the addresses known as they are.
func (u *upstream) take(addrs []netip.Addr, err error) bool {
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			u.setAddrs(nil)
			return true
		}
		if u.backends.Load() != nil {
			u.markReady()
		}
		return false
	}
	u.setAddrs(addrs)
	return true
}

// setAddrs installs the resolved addresses, keeping the backend (and its pool) of an
// address that stays.
func (u *upstream) setAddrs(addrs []netip.Addr) {
	old := u.backends.Load()
	var prev []*backend
	if old != nil {
		prev = *old
	}
	next := make([]*backend, 0, len(addrs))
	for _, a := range addrs {
		addr := net.JoinHostPort(a.Unmap().String(), strconv.Itoa(u.port))
		if slices.ContainsFunc(next, func(b *backend) bool { return b.addr == addr }) {
			continue
		}
		i := slices.IndexFunc(prev, func(b *backend) bool { return b.addr == addr })
		if i >= 0 {
			next = append(next, prev[i])
		} else {
			next = append(next, &backend{addr: addr})
		}
	}
	slices.SortFunc(next, func(a, b *backend) int {
		if a.addr < b.addr {
			return -1
		}
		if a.addr > b.addr {
			return 1
		}
		return 0
	})
	if old == nil || !slices.Equal(prev, next) {
		u.backends.Store(&next)
		for _, b := range prev {
			if !slices.Contains(next, b) {
				b.close()
			}
		}
	}
	u.markReady()
}

func (u *upstream) markReady() { u.readyOne.Do(func() { close(u.ready) }) }

// resolveSoon asks for a resolution now, for example after a task refused a connection.
func (u *upstream) resolveSoon() {
	if u.literal {
		return
	}
	select {
	case u.refresh <- struct{}{}:
	default:
	}
}

// list returns the current backends, waiting for the first resolution. While requests
// wait, lookups overlap until one answers (resolveForWaiters).
func (u *upstream) list(ctx context.Context) []*backend {
	if p := u.backends.Load(); p != nil {
		return *p
	}
	u.waiting.Add(1)
	defer u.waiting.Add(-1)
	u.resolveSoon()
	select {
	case <-u.ready:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	if p := u.backends.Load(); p != nil {
		return *p
	}
	return nil
}

// sweep closes connections idle longer than idleTimeout.
func (u *upstream) sweep() {
	if p := u.backends.Load(); p != nil {
		for _, b := range *p {
			b.sweep()
		}
	}
}

// close stops resolving and closes every pooled connection.
func (u *upstream) close() {
	if u.cancel != nil {
		u.cancel()
	}
	<-u.done
	if p := u.backends.Load(); p != nil {
		for _, b := range *p {
			b.close()
		}
	}
}

// backend is one task address of an upstream with its pool of idle keep-alive
// connections (a stack: the most recently used connection is reused first, so spare
// ones age out).
type backend struct {
	addr     string
	badUntil atomic.Int64 // unix nanoseconds

	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

func (b *backend) bad(now int64) bool { return b.badUntil.Load() > now }

// markBad takes the address out of rotation for badFor and drops its idle connections,
// which are most likely dead too.
func (b *backend) markBad() bool {
	until := time.Now().Add(badFor).UnixNano()
	was := b.badUntil.Swap(until)
	b.dropIdle()
	return was < time.Now().UnixNano()
}

func (b *backend) dropIdle() {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// get returns an idle connection or nil.
func (b *backend) get() *upConn {
	b.mu.Lock()
	n := len(b.idle)
	if n == 0 {
		b.mu.Unlock()
		return nil
	}
	c := b.idle[n-1]
	b.idle[n-1] = nil
	b.idle = b.idle[:n-1]
	b.mu.Unlock()
	return c
}

// put returns a healthy connection after a complete exchange.
func (b *backend) put(c *upConn, now int64) {
	c.idleSince = now
	b.mu.Lock()
	if b.closed || len(b.idle) >= maxIdlePerBackend {
		b.mu.Unlock()
		c.nc.Close()
		return
	}
	b.idle = append(b.idle, c)
	b.mu.Unlock()
}

func (b *backend) sweep() {
	cutoff := time.Now().Add(-idleTimeout).UnixNano()
	b.mu.Lock()
	// The oldest are at the bottom of the stack.
	n := 0
	for n < len(b.idle) && b.idle[n].idleSince < cutoff {
		n++
	}
	stale := slices.Clone(b.idle[:n])
	b.idle = slices.Delete(b.idle, 0, n)
	b.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

func (b *backend) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.dropIdle()
}

// dial opens a new connection to the backend.
func (b *backend) dial(ctx context.Context) (*upConn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	c := &upConn{nc: nc, b: b}
	c.br = bufio.NewReaderSize(c, upReadBuf)
	c.bw = bufio.NewWriterSize(c, upWriteBuf)
	return c, nil
}

// upConn is one HTTP/1.1 connection to a backend.
type upConn struct {
	nc        net.Conn
	br        *bufio.Reader // reads through upConn.Read, which counts
	bw        *bufio.Writer // writes through upConn.Write, which counts
	b         *backend
	written   int64 // bytes of the current request that reached the socket
	received  int64 // bytes of the current response read from the socket
	idleSince int64
	reused    bool
}

// Write writes to the socket and counts what was written, so a failed request can tell
// whether any byte left.
func (c *upConn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.written += int64(n)
	return n, err
}

// Read reads from the socket and counts what was read, so a failed request can tell
// whether the app had started to answer.
func (c *upConn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	c.received += int64(n)
	return n, err
}

// closedByPeer reports whether the app closed (or wrote unexpectedly on) an idle
// connection, with one non-blocking peek at the socket.
func (c *upConn) closedByPeer() bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	// A read deadline left from the last response would fail the peek itself.
	c.nc.SetReadDeadline(time.Time{})
	dead := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is idle and open. Anything else
		// (EOF, an error or unsolicited bytes) makes it unusable.
		dead = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR
		return true
	})
	return dead || err != nil
}
