//go:build linux

package edge

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The plain-HTTP listener is served by event loops, the way nginx serves it: one loop per
// GOMAXPROCS, each with its own epoll instance, over non-blocking sockets it reads only
// when epoll says they are readable. Go's netpoller instead tries every read first, gets
// EAGAIN, parks the goroutine and reads again once woken: about two reads and a park and
// wake per request more than nginx, which on small proxied requests is the edge's gap to
// nginx (docs/benchmarks.md, issue 5).
//
// A loop serves the common case itself: an HTTP/1.1 request without a body for a routed
// host, proxied on a keep-alive upstream connection of the loop's own pool, the response
// passed on with the same header rewriting and framing as h1conn.writeResponse. Anything
// else (see parseRequest and loop.start) is handed, with the bytes already read, to the
// goroutine path (adoptH1), which then owns the connection for good.
//
// Sockets are registered once, edge-triggered, for input and output. A loop remembers
// whether a socket may hold unread bytes: after a read shorter than the buffer it does
// not (a new edge comes with new bytes), so a request costs one read, not two.
//
// Whichever loop epoll wakes for a new connection (the listener is in every loop's set,
// EPOLLEXCLUSIVE), the loop with the fewest connections serves it. The loops are plain
// goroutines, not locked to threads: a locked goroutine needs its own thread handed back
// after every preemption, and the raw system calls below already keep a busy loop on its
// P.

// loopBuf is a client connection's input buffer: a request head that does not fit goes to
// the goroutine path, which allows up to maxHeaderBytes.
const (
	loopBuf       = 8 << 10
	loopUpBuf     = 16 << 10
	loopUpMaxHead = 64 << 10
	// loopTick is the resolution of the loops' timeouts.
	loopTick = 100 * time.Millisecond
	// acceptPerWake bounds the connections a loop accepts per readiness of the
	// listener.
	acceptPerWake = 16
)

// Commands to a loop from other goroutines (bits of loop.cmds).
const (
	cmdStopAccept = 1 << iota
	cmdDrain
	cmdCloseAll
	cmdExit
	cmdInbox // connections another loop accepted for this one
)

// loopGroup is the plain-HTTP listener's loops.
type loopGroup struct {
	s        *Server
	ln       net.Listener
	lnFD     int // a duplicate of ln's descriptor, shared by the loops
	loops    []*loop
	accepted sync.WaitGroup // loops still watching lnFD
	running  sync.WaitGroup
	stopOnce sync.Once // of stopAccepting
	exitOnce sync.Once // of stop
}

// startLoops starts serving ln (a TCP listener) with event loops; it returns nil when ln
// cannot be served that way.
func (s *Server) startLoops(ln net.Listener) (*loopGroup, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, nil
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return nil, errors.Join(err, derr)
	}
	g := &loopGroup{s: s, ln: ln, lnFD: fd}
	for range runtime.GOMAXPROCS(0) {
		l, err := newLoop(g)
		if err != nil {
			for _, l := range g.loops {
				l.release()
			}
			unix.Close(fd)
			return nil, err
		}
		g.loops = append(g.loops, l)
	}
	g.accepted.Add(len(g.loops))
	for _, l := range g.loops {
		g.running.Go(l.run)
	}
	return g, nil
}

func (g *loopGroup) send(cmd uint32) {
	if g == nil {
		return
	}
	for _, l := range g.loops {
		l.cmds.Or(cmd)
		var one [8]byte
		one[0] = 1
		unix.Write(l.evfd, one[:])
	}
}

// stopAccepting makes every loop forget the listener, then closes it.
func (g *loopGroup) stopAccepting() {
	if g == nil {
		return
	}
	g.stopOnce.Do(func() {
		g.send(cmdStopAccept)
		g.accepted.Wait()
		unix.Close(g.lnFD)
		g.ln.Close()
	})
}

// drain closes idle connections; busy ones close after their response.
func (g *loopGroup) drain() { g.send(cmdDrain) }

// closeAll closes every connection the loops hold.
func (g *loopGroup) closeAll() { g.send(cmdCloseAll) }

// stop ends the loops and waits for them.
func (g *loopGroup) stop() {
	if g == nil {
		return
	}
	g.exitOnce.Do(func() {
		g.stopAccepting()
		g.send(cmdExit)
		g.running.Wait()
	})
}

// loop is one event loop. Everything in it belongs to its goroutine.
type loop struct {
	g      *loopGroup
	s      *Server
	ep     int
	evfd   int
	cmds   atomic.Uint32
	events []unix.EpollEvent
	load   atomic.Int32 // clients served and on their way, for the other loops

	inboxMu sync.Mutex
	inbox   []accepted

	fds       []fdEntry // by descriptor
	clients   []*lconn
	idle      map[*backend][]*upc
	idleCount int
	addrs     map[*backend]unix.Sockaddr

	now       int64 // unix nanoseconds, as of the last epoll_wait
	nextTick  int64
	nextSweep int64
	accepting bool
	pausedTo  int64 // accepting paused (out of descriptors) until then
	scratch   []byte
}

// accepted is a new client connection passed from the loop that accepted it to the loop
// that serves it.
type accepted struct {
	fd       int
	remoteIP string
}

// fdEntry says what a descriptor is; gen tells a stale event (for a descriptor closed
// and reused within one batch) from a current one.
type fdEntry struct {
	c   *lconn
	u   *upc
	gen int32
}

// Client connection states.
const (
	stHead  = iota // reading a request head
	stProxy        // the request is on its way to an app; waiting for the response head
	stBody         // passing the response body on
	stDone         // response complete; waiting for the client to take it
)

// Which timeout lconn.deadline is.
const (
	dlNone = iota
	dlIdle
	dlHeader
	dlDial
	dlUpstream
)

// lconn is a client connection on a loop.
type lconn struct {
	fd       int
	idx      int // in loop.clients
	remoteIP string
	in       []byte // buffered input; cap loopBuf
	out      []byte // output the socket did not take yet, from outOff
	outOff   int
	readable bool // may hold unread bytes
	hup      bool // the peer closed its side, or the socket failed
	state    int
	deadline int64
	dl       int

	hostRaw []byte // the last Host header and its normal form, to skip normalHost
	host    string

	// The request in flight.
	req       fastRequest
	upHead    []byte // the request as sent upstream, kept for retries
	keepAlive bool
	start     int64 // when proxying started, unix nanoseconds
	timeout   int64
	up        *upstream
	backends  []*backend
	tried     uint64
	attempts  int
	rr        uint64
	u         *upc

	// The response in flight.
	resp      upstreamResponse
	chunkOut  bool // re-framed as chunked for the client
	remaining int64
	dec       chunkDecoder
}

// upc is an upstream connection of a loop's pool.
type upc struct {
	fd         int
	b          *backend
	c          *lconn // the request it serves; nil while idle
	in         []byte
	connecting bool
	readable   bool
	hup        bool
	reused     bool
	pending    []byte // request bytes not written yet
	written    int
	received   int
	idleSince  int64
	idleIdx    int
}

func newLoop(g *loopGroup) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	l := &loop{
		g: g, s: g.s, ep: ep, evfd: evfd, events: make([]unix.EpollEvent, 256),
		idle: map[*backend][]*upc{}, addrs: map[*backend]unix.Sockaddr{}, accepting: true,
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		l.release()
		return nil, err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, g.lnFD, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(g.lnFD)}); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

func (l *loop) release() {
	unix.Close(l.ep)
	unix.Close(l.evfd)
}

func (l *loop) run() {
	defer l.release()
	l.now = time.Now().UnixNano()
	l.nextTick = l.now + int64(loopTick)
	for {
		msec := -1
		if len(l.clients) > 0 || l.idleCount > 0 || l.pausedTo != 0 {
			msec = int(max(0, (l.nextTick-l.now+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		}
		n, err := rawEpollWait(l.ep, l.events)
		if n == 0 && err == nil && msec != 0 {
			n, err = unix.EpollWait(l.ep, l.events, msec) // nothing ready: block, giving up the P
		}
		if err != nil && err != unix.EINTR {
			l.s.log.Error("edge event loop: epoll_wait", "error", err)
			l.closeEverything()
			l.stopAccept()
			return
		}
		l.now = time.Now().UnixNano()
		for i := range max(n, 0) {
			ev := l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.evfd:
				var buf [8]byte
				unix.Read(l.evfd, buf[:])
				if l.command() {
					return
				}
			case fd == l.g.lnFD && ev.Pad == 0:
				if l.accepting {
					l.accept()
				}
			default:
				if fd >= len(l.fds) || l.fds[fd].gen != ev.Pad {
					continue
				}
				if e := l.fds[fd]; e.c != nil {
					l.clientEvent(e.c, ev.Events)
				} else if e.u != nil {
					l.upstreamEvent(e.u, ev.Events)
				}
			}
		}
		if l.now >= l.nextTick {
			l.tick()
		}
	}
}

// command carries out what other goroutines asked; it reports whether to exit.
func (l *loop) command() bool {
	cmds := l.cmds.Swap(0)
	if cmds&cmdInbox != 0 {
		l.inboxMu.Lock()
		in := l.inbox
		l.inbox = nil
		l.inboxMu.Unlock()
		for _, a := range in {
			l.serve(a)
		}
	}
	if cmds&cmdStopAccept != 0 {
		l.stopAccept()
	}
	if cmds&cmdDrain != 0 {
		for i := len(l.clients) - 1; i >= 0; i-- {
			if c := l.clients[i]; c.state == stHead && len(c.in) == 0 {
				l.closeClient(c)
			}
		}
	}
	if cmds&cmdCloseAll != 0 {
		for i := len(l.clients) - 1; i >= 0; i-- {
			l.closeClient(l.clients[i])
		}
	}
	if cmds&cmdExit != 0 {
		l.closeEverything()
		return true
	}
	return false
}

func (l *loop) stopAccept() {
	if l.accepting || l.pausedTo != 0 {
		if l.pausedTo == 0 {
			unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.g.lnFD, nil)
		}
		l.accepting, l.pausedTo = false, 0
		l.g.accepted.Done()
	}
}

func (l *loop) closeEverything() {
	l.inboxMu.Lock()
	in := l.inbox
	l.inbox = nil
	l.inboxMu.Unlock()
	for _, a := range in {
		unix.Close(a.fd)
		l.s.connWG.Done()
	}
	for i := len(l.clients) - 1; i >= 0; i-- {
		l.closeClient(l.clients[i])
	}
	for _, list := range l.idle {
		for _, u := range list {
			unix.Close(u.fd)
		}
	}
	l.idle, l.idleCount = map[*backend][]*upc{}, 0
}

// register adds fd to the loop's epoll set, edge-triggered, for input and output.
func (l *loop) register(fd int, c *lconn, u *upc) error {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, fdEntry{})
	}
	e := &l.fds[fd]
	e.gen++
	if e.gen == 0 {
		e.gen = 1 // 0 marks the listener
	}
	e.c, e.u = c, u
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: e.gen}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		e.c, e.u = nil, nil
		return err
	}
	return nil
}

func (l *loop) forget(fd int) {
	l.fds[fd].c, l.fds[fd].u = nil, nil
}

func (l *loop) accept() {
	s := l.s
	for range acceptPerWake {
		fd, sa, err := unix.Accept4(l.g.lnFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
			default:
				// Out of descriptors and the like: stop watching the listener for a while,
				// as acceptLoop backs off.
				s.log.Warn("edge accept", "error", err, "retry_in", loopTick)
				unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.g.lnFD, nil)
				l.accepting, l.pausedTo = false, l.now+int64(loopTick)
			}
			return
		}
		s.connMu.Lock()
		ok := !s.draining.Load()
		if ok {
			s.connWG.Add(1)
		}
		s.connMu.Unlock()
		if !ok {
			unix.Close(fd)
			continue
		}
		a := accepted{fd: fd}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			a.remoteIP = netip.AddrFrom4(sa.Addr).String()
		case *unix.SockaddrInet6:
			a.remoteIP = netip.AddrFrom16(sa.Addr).Unmap().String()
		}
		// Whichever loop epoll woke, the one with the fewest connections serves it: a
		// burst of connections would otherwise mostly land on one loop.
		to := l
		for _, o := range l.g.loops {
			if o.load.Load() < to.load.Load() {
				to = o
			}
		}
		to.load.Add(1) // counted now, so the next accept sees it
		if to == l {
			l.serve(a)
			continue
		}
		to.inboxMu.Lock()
		to.inbox = append(to.inbox, a)
		to.inboxMu.Unlock()
		to.cmds.Or(cmdInbox)
		var one [8]byte
		one[0] = 1
		unix.Write(to.evfd, one[:])
	}
}

// serve starts serving a new client connection (already counted in connWG and load).
func (l *loop) serve(a accepted) {
	unix.SetsockoptInt(a.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as net does
	c := &lconn{fd: a.fd, remoteIP: a.remoteIP, in: make([]byte, 0, loopBuf), idx: len(l.clients)}
	if err := l.register(a.fd, c, nil); err != nil {
		unix.Close(a.fd)
		l.s.connWG.Done()
		l.load.Add(-1)
		return
	}
	l.clients = append(l.clients, c)
	l.readHead(c) // sets the idle timeout; epoll reports bytes that came already
}

// tick runs every loopTick: timeouts, idle upstream connections, a paused listener.
func (l *loop) tick() {
	l.nextTick = l.now + int64(loopTick)
	for i := len(l.clients) - 1; i >= 0; i-- {
		if i >= len(l.clients) {
			continue
		}
		c := l.clients[i]
		if c.dl == dlNone || l.now < c.deadline {
			continue
		}
		switch c.dl {
		case dlIdle, dlHeader:
			l.closeClient(c)
		case dlDial:
			u := c.u
			l.dropUpstream(c)
			l.dialFailed(c, u.b, unix.ETIMEDOUT)
		case dlUpstream:
			l.dropUpstream(c)
			l.page(c, http.StatusGatewayTimeout, pageGatewayTimeout)
		}
	}
	if l.now >= l.nextSweep {
		// Once a second: idle upstream connections past idleTimeout, and those (and the
		// cached address) of backends that went away.
		l.nextSweep = l.now + int64(time.Second)
		cutoff := l.now - int64(idleTimeout)
		for b := range l.addrs {
			b.mu.Lock()
			closed := b.closed
			b.mu.Unlock()
			list := l.idle[b]
			for len(list) > 0 && (closed || list[0].idleSince < cutoff) {
				l.closeUp(list[0])
				list = l.idle[b]
			}
			if len(list) == 0 {
				delete(l.idle, b)
			}
			if closed {
				delete(l.addrs, b)
			}
		}
	}
	if l.pausedTo != 0 && l.now >= l.pausedTo {
		if unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.g.lnFD, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.g.lnFD)}) == nil {
			l.accepting, l.pausedTo = true, 0
		} else {
			l.pausedTo = l.now + int64(loopTick)
		}
	}
}

func (l *loop) clientEvent(c *lconn, ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.hup = true
		}
	}
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if !l.flush(c) {
			l.closeClient(c)
			return
		}
	}
	l.advance(c)
}

// advance moves c on after its output drained or input arrived.
func (l *loop) advance(c *lconn) {
	switch {
	case len(c.out) > 0:
	case c.state == stHead:
		l.readHead(c)
	case c.state == stBody:
		l.pumpBody(c)
	case c.state == stDone:
		l.finished(c)
	}
}

// flush writes pending output; false means the client is gone.
func (l *loop) flush(c *lconn) bool {
	for c.outOff < len(c.out) {
		n, err := rawWrite(c.fd, c.out[c.outOff:])
		if n > 0 {
			c.outOff += n
			continue
		}
		if err == unix.EINTR {
			continue
		}
		return err == unix.EAGAIN
	}
	c.out, c.outOff = c.out[:0], 0
	return true
}

// send writes p to the client, keeping what the socket does not take; false means the
// client is gone.
func (l *loop) send(c *lconn, p []byte) bool {
	if len(c.out) > 0 {
		c.out = append(c.out, p...)
		return true
	}
	for len(p) > 0 {
		n, err := rawWrite(c.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			return false
		}
		c.out = append(c.out[:0], p...)
		c.outOff = 0
		return true
	}
	return true
}

// readHead reads and serves request heads while the client sends them.
func (l *loop) readHead(c *lconn) {
	for c.fd >= 0 && c.state == stHead {
		if len(c.in) > 0 {
			req, upHead, res := parseRequest(c.in, c.upHead[:0])
			c.upHead = upHead
			switch {
			case res == parsedRequest:
				l.start(c, req)
				continue
			case res == handOff, len(c.in) == cap(c.in):
				l.handOff(c)
				return
			}
		}
		if !c.readable {
			lim := l.s.table.Load().limits
			switch {
			case len(c.in) == 0 && c.dl != dlIdle:
				if l.s.draining.Load() {
					l.closeClient(c)
					return
				}
				c.dl, c.deadline = dlIdle, l.now+int64(lim.IdleTimeout)
			case len(c.in) > 0 && c.dl != dlHeader:
				c.dl, c.deadline = dlHeader, l.now+int64(lim.ReadHeaderTimeout)
			}
			return
		}
		n, err := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
		switch {
		case n > 0:
			if len(c.in)+n < cap(c.in) {
				c.readable = c.hup
			}
			c.in = c.in[:len(c.in)+n]
		case err == unix.EAGAIN:
			c.readable = false
		case err == unix.EINTR:
		default:
			// The client closed or failed. A partial head gets no answer, as on the
			// goroutine path.
			l.closeClient(c)
			return
		}
	}
}

// start serves a parsed request, or hands the connection to the goroutine path when
// the answer is not a proxied response (challenges, pages, redirects) or the upstream
// is not resolved yet.
func (l *loop) start(c *lconn, req fastRequest) {
	s := l.s
	t := s.table.Load()
	if len(t.challenges) > 0 && (bytes.HasPrefix(req.target, []byte("/.well-known/")) || bytes.IndexByte(req.target, '%') >= 0) {
		l.handOff(c)
		return
	}
	if !bytes.Equal(req.host, c.hostRaw) {
		c.hostRaw = append(c.hostRaw[:0], req.host...)
		c.host = normalHost(string(req.host))
	}
	rt := t.route(c.host)
	if rt == nil || rt.suspended || rt.httpsRedirect && t.certificate(c.host) != nil {
		l.handOff(c)
		return
	}
	up := rt.upstream
	bp := up.backends.Load()
	if bp == nil || len(*bp) == 0 {
		l.handOff(c) // the goroutine path waits for the first resolution, or answers 502
		return
	}

	h := c.upHead
	h = append(h, "X-Forwarded-For: "...)
	h = append(h, c.remoteIP...)
	h = append(h, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
	h = append(h, req.host...)
	h = append(h, "\r\n\r\n"...)
	c.upHead = h
	c.req = req
	c.req.host, c.req.method, c.req.target = nil, nil, nil // they point into c.in, which moves on
	c.keepAlive = !req.close && !s.draining.Load()
	c.in = c.in[:copy(c.in, c.in[req.headLen:])]

	c.state = stProxy
	c.dl = dlNone
	c.start = l.now
	c.timeout = int64(t.limits.UpstreamTimeout)
	c.up = up
	c.backends = *bp
	c.tried, c.attempts = 0, 0
	c.rr = up.next.Add(1)
	l.nextBackend(c)
}

// nextBackend tries the next backend in round-robin order, as Server.proxy does.
func (l *loop) nextBackend(c *lconn) {
	if c.attempts >= len(c.backends)+1 || c.attempts >= 16 {
		l.page(c, http.StatusBadGateway, pageBadGateway)
		return
	}
	i := pick(c.backends, c.rr, c.tried, c.start)
	if i < 0 {
		l.page(c, http.StatusBadGateway, pageBadGateway)
		return
	}
	if i < 64 {
		c.tried |= 1 << i
	}
	c.attempts++
	l.attempt(c, c.backends[i], true)
}

// attempt sends c's request to b, on a pooled connection when pooled is set and one is
// idle, else on a new one.
func (l *loop) attempt(c *lconn, b *backend, pooled bool) {
	var u *upc
	if pooled {
		u = l.takeIdle(b)
		// epoll reports an idle connection the app closed, but a close may be on its
		// way: look, as Server.attempt does, before writing what cannot be retried.
		if u != nil && (!c.req.replayable || l.now-u.idleSince > int64(checkIdleAfter)) && peerClosed(u.fd) {
			l.closeUp(u)
			u = nil
		}
	}
	if u == nil {
		var err error
		if u, err = l.dial(b); err != nil {
			l.dialFailed(c, b, err)
			return
		}
	} else {
		u.reused = true
	}
	u.c, c.u = c, u
	u.pending, u.written, u.received = c.upHead, 0, 0
	if u.connecting {
		c.dl, c.deadline = dlDial, l.now+int64(dialTimeout)
		return
	}
	l.writeUpstream(u)
}

// dialFailed handles a connection to b that could not be made: b is skipped for a
// while and the request goes to another backend.
func (l *loop) dialFailed(c *lconn, b *backend, err error) {
	if b.markBad() {
		l.s.log.Warn("upstream address refused a connection; skipping it for a while",
			"upstream", c.up.key, "addr", b.addr, "error", err)
	}
	l.dropIdle(b)
	c.up.resolveSoon()
	l.nextBackend(c)
}

// retryAfterFailure follows a request that failed before the app could have acted on
// it, as Server.retryAfterFailure does.
func (l *loop) retryAfterFailure(c *lconn, b *backend, reused bool) {
	if reused {
		l.attempt(c, b, false)
		return
	}
	if b.markBad() {
		l.s.log.Warn("upstream address reset a new connection; skipping it for a while", "upstream", c.up.key, "addr", b.addr)
	}
	l.dropIdle(b)
	c.up.resolveSoon()
	l.nextBackend(c)
}

func (l *loop) dial(b *backend) (*upc, error) {
	sa := l.addrs[b]
	if sa == nil {
		ap, err := netip.ParseAddrPort(b.addr)
		if err != nil {
			return nil, err
		}
		if ap.Addr().Is4() {
			sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
		} else {
			sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
		}
		l.addrs[b] = sa
	}
	domain := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// As net.Dialer{KeepAlive: 30 * time.Second} sets them.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30)
	u := &upc{fd: fd, b: b, in: make([]byte, 0, loopUpBuf), idleIdx: -1}
	switch err := unix.Connect(fd, sa); err {
	case nil:
	case unix.EINPROGRESS:
		u.connecting = true
	default:
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	if err := l.register(fd, nil, u); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return u, nil
}

// peerClosed reports whether the app closed (or wrote unexpectedly on) an idle
// connection, with one non-blocking peek.
func peerClosed(fd int) bool {
	var buf [1]byte
	_, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN && err != unix.EINTR
}

func (l *loop) upstreamEvent(u *upc, ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		u.readable = true
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			u.hup = true
		}
	}
	c := u.c
	if c == nil {
		if u.readable {
			l.closeUp(u) // idle, and closed by the app (or it sent something unasked)
		}
		return
	}
	if u.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		u.connecting = false
		if errno, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = os.NewSyscallError("connect", unix.Errno(errno))
			}
			l.dropUpstream(c)
			l.dialFailed(c, u.b, err)
			return
		}
		c.dl = dlNone
		l.writeUpstream(u)
		return
	}
	if ev&unix.EPOLLOUT != 0 && len(u.pending) > 0 {
		l.writeUpstream(u)
		return
	}
	switch c.state {
	case stProxy:
		if len(u.pending) == 0 {
			l.readResponseHead(c, u)
		}
	case stBody:
		l.pumpBody(c)
	}
}

// writeUpstream writes the rest of the request.
func (l *loop) writeUpstream(u *upc) {
	c := u.c
	for len(u.pending) > 0 {
		n, err := rawWrite(u.fd, u.pending)
		if n > 0 {
			u.written += n
			u.pending = u.pending[n:]
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return
		}
		b, reused, written := u.b, u.reused, u.written
		l.dropUpstream(c)
		if written == 0 || c.req.replayable {
			l.retryAfterFailure(c, b, reused)
			return
		}
		l.page(c, http.StatusBadGateway, pageBadGateway)
		return
	}
	c.dl, c.deadline = dlUpstream, c.start+c.timeout
	if u.readable {
		l.readResponseHead(c, u)
	}
}

// readResponseHead reads until the response head is complete, then starts passing the
// response on.
func (l *loop) readResponseHead(c *lconn, u *upc) {
	for {
		if len(u.in) > 0 {
			resp, n, err := parseResponseHead(u.in)
			if err != nil {
				l.s.log.Debug("upstream response", "upstream", c.up.key, "addr", u.b.addr, "error", err)
				l.dropUpstream(c)
				l.page(c, http.StatusBadGateway, pageBadGateway)
				return
			}
			if n > 0 {
				if resp.code >= 100 && resp.code <= 199 && resp.code != http.StatusSwitchingProtocols {
					u.in = u.in[:copy(u.in, u.in[n:])] // an interim response: skip it
					continue
				}
				if resp.code == http.StatusSwitchingProtocols {
					// Only an upgrade request (never served here) may be switched.
					l.dropUpstream(c)
					c.keepAlive = false
					l.page(c, http.StatusBadGateway, pageBadGateway)
					return
				}
				l.respond(c, u, resp, n)
				return
			}
			if len(u.in) == cap(u.in) {
				if cap(u.in) >= loopUpMaxHead {
					l.s.log.Debug("upstream response", "upstream", c.up.key, "addr", u.b.addr, "error", "response head too large")
					l.dropUpstream(c)
					l.page(c, http.StatusBadGateway, pageBadGateway)
					return
				}
				u.in = append(make([]byte, 0, 2*cap(u.in)), u.in...)
			}
		}
		if !u.readable {
			return
		}
		n, err := l.readUp(u)
		switch {
		case n > 0:
			continue
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		}
		// Closed or failed before a complete head.
		closedOrReset := err == nil || err == unix.ECONNRESET || err == unix.EPIPE
		if err == nil {
			err = errUpstreamClosed
		}
		b, reused, received := u.b, u.reused, u.received
		l.dropUpstream(c)
		if c.req.replayable && received == 0 && closedOrReset {
			l.retryAfterFailure(c, b, reused)
			return
		}
		l.s.log.Debug("upstream response", "upstream", c.up.key, "addr", b.addr, "error", err)
		l.page(c, http.StatusBadGateway, pageBadGateway)
		return
	}
}

var errUpstreamClosed = errors.New("upstream closed the connection before a complete response head")

// respond writes the client's response head and whatever of the body is already here,
// in one write when the socket takes it.
func (l *loop) respond(c *lconn, u *upc, resp upstreamResponse, headLen int) {
	out, chunked, noBody, err := appendClientHead(l.scratch[:0], u.in[:headLen], &resp, c.req.head, c.keepAlive)
	if err != nil {
		l.s.log.Debug("upstream response", "upstream", c.up.key, "addr", u.b.addr, "error", err)
		l.dropUpstream(c)
		l.page(c, http.StatusBadGateway, pageBadGateway)
		return
	}
	c.dl = dlNone
	u.in = u.in[:copy(u.in, u.in[headLen:])]
	c.resp, c.chunkOut = resp, chunked
	if noBody {
		l.scratch = out
		if !l.send(c, out) {
			l.closeClient(c)
			return
		}
		l.bodyDone(c, true)
		return
	}
	c.state = stBody
	if resp.contentLength >= 0 {
		c.remaining = resp.contentLength
		k := min(int64(len(u.in)), c.remaining)
		out = append(out, u.in[:k]...)
		c.remaining -= k
		u.in = u.in[:copy(u.in, u.in[k:])]
		l.scratch = out
		if !l.send(c, out) {
			l.closeClient(c)
			return
		}
		if c.remaining == 0 {
			l.bodyDone(c, true)
			return
		}
	} else {
		c.dec.reset()
		l.scratch = out
		if !l.send(c, out) {
			l.closeClient(c)
			return
		}
	}
	l.pumpBody(c)
}

// pumpBody passes the body on while the client takes it and the app sends it.
func (l *loop) pumpBody(c *lconn) {
	u := c.u
	for c.state == stBody && len(c.out) == 0 {
		if len(u.in) > 0 {
			var consumed int
			var ok, done bool
			switch {
			case c.resp.contentLength >= 0:
				k := min(int64(len(u.in)), c.remaining)
				ok = l.send(c, u.in[:k])
				c.remaining -= k
				consumed, done = int(k), c.remaining == 0
			case c.resp.chunked:
				out, n, end, err := c.dec.decode(l.scratch[:0], u.in)
				l.scratch = out
				if err != nil {
					l.upstreamFailedMidBody(c)
					return
				}
				ok = len(out) == 0 || l.send(c, out)
				consumed, done = n, end
			default: // until the app closes
				out := strconv.AppendUint(l.scratch[:0], uint64(len(u.in)), 16)
				out = append(out, "\r\n"...)
				out = append(out, u.in...)
				out = append(out, "\r\n"...)
				l.scratch = out
				ok = l.send(c, out)
				consumed = len(u.in)
			}
			if !ok {
				l.closeClient(c)
				return
			}
			u.in = u.in[:copy(u.in, u.in[consumed:])]
			if done {
				l.bodyDone(c, true)
				return
			}
			if consumed > 0 {
				continue
			}
		}
		if !u.readable {
			return
		}
		if len(u.in) == cap(u.in) {
			l.upstreamFailedMidBody(c) // a chunk line longer than the buffer
			return
		}
		n, err := l.readUp(u)
		switch {
		case n > 0, err == unix.EAGAIN, err == unix.EINTR:
		case err == nil && c.resp.contentLength < 0 && !c.resp.chunked:
			// The end of a body delimited by the close.
			if !l.send(c, []byte("0\r\n\r\n")) {
				l.closeClient(c)
				return
			}
			l.bodyDone(c, false)
			return
		default:
			l.upstreamFailedMidBody(c)
			return
		}
	}
}

// readUp reads what the app sent into the free space of u.in, and notes whether more may
// be waiting: after a read shorter than the space, only a hang-up's end of file.
func (l *loop) readUp(u *upc) (int, error) {
	n, err := rawRead(u.fd, u.in[len(u.in):cap(u.in)])
	switch {
	case n > 0:
		if len(u.in)+n < cap(u.in) {
			u.readable = u.hup
		}
		u.in = u.in[:len(u.in)+n]
		u.received += n
	case err == unix.EAGAIN:
		u.readable = false
	}
	return n, err
}

// upstreamFailedMidBody cuts the client's response short: the client sees a truncated
// response, not a complete one.
func (l *loop) upstreamFailedMidBody(c *lconn) {
	l.dropUpstream(c)
	c.keepAlive = false
	c.state = stDone
	if len(c.out) == 0 {
		l.closeClient(c)
	}
}

// bodyDone ends the response: the upstream connection goes back to the pool when
// reusable, and c moves on once the client has taken the response.
func (l *loop) bodyDone(c *lconn, reusable bool) {
	u := c.u
	c.u = nil
	if reusable && !c.resp.close && !c.req.close && len(u.in) == 0 && !u.hup {
		l.putIdle(u)
	} else {
		l.closeUp(u)
	}
	c.state = stDone
	if len(c.out) == 0 {
		l.finished(c)
	}
}

// finished follows a response the client has taken: close, or read the next request.
func (l *loop) finished(c *lconn) {
	if !c.keepAlive {
		l.closeClient(c)
		return
	}
	c.state = stHead
	c.dl = dlNone
	l.readHead(c)
}

// page answers with one of the edge's pages, as h1conn.writeSimple writes it.
func (l *loop) page(c *lconn, code int, body string) {
	out := append(l.scratch[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(code)...)
	out = append(out, "\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"...)
	if !c.keepAlive {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	if !c.req.head {
		out = append(out, body...)
	}
	l.scratch = out
	c.dl = dlNone
	if !l.send(c, out) {
		l.closeClient(c)
		return
	}
	c.state = stDone
	if len(c.out) == 0 {
		l.finished(c)
	}
}

// handOff gives c to the goroutine path with the bytes read so far.
func (l *loop) handOff(c *lconn) {
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.forget(c.fd)
	l.removeClient(c)
	f := os.NewFile(uintptr(c.fd), "")
	c.fd = -1
	nc, err := net.FileConn(f) // a duplicate descriptor in Go's netpoller
	f.Close()
	if err == nil {
		l.s.adoptH1(nc, bytes.Clone(c.in))
	} else {
		l.s.log.Warn("edge: hand a connection to the goroutine path", "error", err)
	}
	l.s.connWG.Done()
}

func (l *loop) removeClient(c *lconn) {
	last := len(l.clients) - 1
	l.clients[c.idx] = l.clients[last]
	l.clients[c.idx].idx = c.idx
	l.clients[last] = nil
	l.clients = l.clients[:last]
	l.load.Add(-1)
}

func (l *loop) closeClient(c *lconn) {
	if c.u != nil {
		l.dropUpstream(c)
	}
	l.forget(c.fd)
	unix.Close(c.fd)
	l.removeClient(c)
	c.fd = -1
	l.s.connWG.Done()
}

// dropUpstream closes the upstream connection of c's request.
func (l *loop) dropUpstream(c *lconn) {
	if u := c.u; u != nil {
		c.u = nil
		l.closeUp(u)
	}
}

func (l *loop) closeUp(u *upc) {
	if u.c == nil && u.idleIdx >= 0 {
		l.removeIdle(u)
	}
	u.c = nil
	l.forget(u.fd)
	unix.Close(u.fd)
}

func (l *loop) takeIdle(b *backend) *upc {
	list := l.idle[b]
	n := len(list)
	if n == 0 {
		return nil
	}
	u := list[n-1]
	list[n-1] = nil
	l.idle[b] = list[:n-1]
	l.idleCount--
	u.idleIdx = -1
	return u
}

func (l *loop) putIdle(u *upc) {
	list := l.idle[u.b]
	if len(list) >= maxIdlePerBackend || u.b.bad(l.now) {
		u.idleIdx = -1
		l.closeUp(u)
		return
	}
	u.c, u.reused, u.readable = nil, false, false
	u.idleSince = l.now
	u.idleIdx = len(list)
	l.idle[u.b] = append(list, u)
	l.idleCount++
}

// removeIdle takes u out of its pool (a stack, oldest first).
func (l *loop) removeIdle(u *upc) {
	list := l.idle[u.b]
	i := u.idleIdx
	copy(list[i:], list[i+1:])
	list[len(list)-1] = nil
	list = list[:len(list)-1]
	for j := i; j < len(list); j++ {
		list[j].idleIdx = j
	}
	l.idle[u.b] = list
	l.idleCount--
	u.idleIdx = -1
}

// dropIdle closes the loop's idle connections to b, which most likely went away.
func (l *loop) dropIdle(b *backend) {
	for len(l.idle[b]) > 0 {
		l.closeUp(l.idle[b][0])
	}
}

// The loops' reads, writes and polls for ready events never block, so they are made as
// raw system calls: the goroutine keeps its P instead of telling the scheduler it entered
// a system call, which otherwise lets sysmon hand the P to another thread while a
// loopback write runs, and costs a wake-up to get it back.

func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) of p on fd.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawEpollWait polls for ready events without waiting (timeout 0).
func rawEpollWait(ep int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
