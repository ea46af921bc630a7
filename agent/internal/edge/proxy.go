package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The proxy loop is written here rather than taken from httputil.ReverseProxy and
// http.Transport: the Transport hands every request to two goroutines of its own (one
// writing, one reading the connection) and ReverseProxy copies and rewrites the request
// first, which together cost the edge most of its throughput on small responses. Here the
// handler's goroutine writes the request on a pooled HTTP/1.1 connection and reads the
// response from it itself.

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errClientBody marks a failure reading the client's request body (the client went away
// or sent too much), as opposed to a failure talking to the upstream.
type errClientBody struct{ err error }

func (e errClientBody) Error() string { return "read request body: " + e.err.Error() }
func (e errClientBody) Unwrap() error { return e.err }

var errBodyTooLarge = errors.New("request body too large")

// outcome of one attempt on one backend.
type outcome int

const (
	served     outcome = iota // a response (possibly an error page) was written
	tryAnother                // nothing reached the app: try another address
)

// responder is the side of an exchange facing the client: an HTTP/1.x connection on the
// edge's own loop (h1conn) or an HTTP/2 stream through net/http (h2client).
type responder interface {
	// writeSimple writes a complete small response (pages, challenges, redirects).
	writeSimple(code int, contentType, body, location string)
	// writeResponse passes the app's response on, body and all.
	writeResponse(x *exchange, u *upConn, resp *http.Response) bodyResult
	// switchProtocols passes a 101 on and tunnels bytes both ways.
	switchProtocols(x *exchange, u *upConn, resp *http.Response)
	// abort cuts the client's response short after the app failed mid-body.
	abort()
}

func writePage(c responder, code int, body string) {
	c.writeSimple(code, "text/html; charset=utf-8", body, "")
}

// exchange is what one proxied request needs; it lives on the handler's stack.
type exchange struct {
	cw         responder
	r          *http.Request
	ctx        context.Context // ends when the client goes away (HTTP/2) or the edge stops
	watchCtx   bool            // abort upstream I/O when ctx ends
	https      bool
	replayable bool // idempotent and without a body: safe to send twice
	maxBody    int64
	timeout    time.Duration
	upgrade    string // the Upgrade header of an upgrade request
	clientIP   string
	now        int64 // unix nanoseconds when proxying started; close enough for pools
}

// proxy forwards r to rt's upstream: round-robin over its addresses, skipping those that
// recently refused connections, retrying on another address whenever the request did
// not reach the app.
func (s *Server) proxy(cw responder, r *http.Request, t *table, rt *route, https bool) {
	x := exchange{cw: cw, r: r, https: https, maxBody: t.limits.MaxBodyBytes, timeout: t.upstreamTimeout(),
		ctx: s.baseCtx, now: time.Now().UnixNano()}
	switch c := cw.(type) {
	case *h1conn:
		x.clientIP = c.remoteIP
	case *h2client:
		x.ctx, x.watchCtx = c.r.Context(), true
		x.clientIP = r.RemoteAddr
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			x.clientIP = ip
		}
	}
	if x.maxBody > 0 && r.ContentLength > x.maxBody {
		writePage(cw, http.StatusRequestEntityTooLarge, pageTooLarge)
		return
	}
	if r.ProtoMajor == 1 && headerHasToken(r.Header["Connection"], "upgrade") {
		x.upgrade = r.Header.Get("Upgrade")
	}
	x.replayable = bodyless(r) && idempotent(r)

	up := rt.upstream
	backends := up.list(x.ctx)
	n := len(backends)
	if n == 0 {
		// No task yet (an app just deployed) or none left: look again now rather than at the
		// next interval, so the first replica is reached as soon as it exists.
		up.resolveSoon()
		writePage(cw, http.StatusBadGateway, pageBadGateway)
		return
	}
	var tried uint64 // bit i: backends[i] was tried (the first 64)
	start := up.next.Add(1)
	now := x.now
	for attempt := 0; attempt < n+1 && attempt < 16; attempt++ {
		i := pick(backends, start, tried, now)
		if i < 0 {
			break
		}
		if i < 64 {
			tried |= 1 << i
		}
		if s.attempt(&x, up, backends[i], true) == served {
			return
		}
		if x.ctx.Err() != nil {
			return // the client went away
		}
	}
	writePage(cw, http.StatusBadGateway, pageBadGateway)
}

// pick returns the index of the next backend to try: the first in round-robin order not
// tried yet and not marked bad, else the first not tried yet (a marked address may be
// back; trying it beats failing), else -1.
func pick(bs []*backend, start, tried uint64, now int64) int {
	n := uint64(len(bs))
	fallback := -1
	for k := uint64(0); k < n; k++ {
		i := int((start + k) % n)
		if i < 64 && tried&(1<<i) != 0 {
			continue
		}
		if !bs[i].bad(now) {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

// attempt sends the request to one backend, on a pooled connection when pooled is set
// and one is idle, else on a new one.
func (s *Server) attempt(x *exchange, up *upstream, b *backend, pooled bool) outcome {
	var c *upConn
	if pooled {
		c = b.get()
		// A connection idle for a while may have been closed by the app; so may any, for
		// a request that cannot be retried: look before writing on it.
		if c != nil && (c.br.Buffered() > 0 ||
			(!x.replayable || x.now-c.idleSince > int64(checkIdleAfter)) && c.closedByPeer()) {
			c.nc.Close()
			c = nil
		}
	}
	if c == nil {
		var err error
		c, err = b.dial(x.ctx)
		if err != nil {
			if x.ctx.Err() != nil {
				return served
			}
			if b.markBad() {
				s.log.Warn("upstream address refused a connection; skipping it for a while",
					"upstream", up.key, "addr", b.addr, "error", err)
			}
			up.resolveSoon()
			return tryAnother
		}
	} else {
		c.reused = true
	}

	// Unblock reads and writes on the upstream connection when the client goes away.
	stop := func() bool { return true }
	if x.watchCtx {
		nc := c.nc
		stop = context.AfterFunc(x.ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	}
	c.written, c.received = 0, 0
	err := s.writeRequest(x, c)
	if err != nil {
		stop()
		c.nc.Close()
		var bodyErr errClientBody
		switch {
		case errors.As(err, &bodyErr):
			if errors.Is(err, errBodyTooLarge) {
				writePage(x.cw, http.StatusRequestEntityTooLarge, pageTooLarge)
			} else if h1, ok := x.cw.(*h1conn); ok {
				h1.keepAlive = false // a broken body leaves the connection unusable
			}
			return served
		case c.written == 0 || x.replayable:
			return s.retryAfterFailure(x, up, b, c)
		}
		writePage(x.cw, http.StatusBadGateway, pageBadGateway)
		return served
	}

	c.nc.SetReadDeadline(time.Unix(0, x.now).Add(x.timeout))
	resp, err := readResponse(c.br, x.r)
	if err != nil {
		stop()
		c.nc.Close()
		var ne net.Error
		switch {
		case x.ctx.Err() != nil:
			return served
		case errors.As(err, &ne) && ne.Timeout():
			writePage(x.cw, http.StatusGatewayTimeout, pageGatewayTimeout)
			return served
		case x.replayable && c.received == 0 && closedOrReset(err):
			return s.retryAfterFailure(x, up, b, c)
		}
		s.log.Debug("upstream response", "upstream", up.key, "addr", b.addr, "error", err)
		writePage(x.cw, http.StatusBadGateway, pageBadGateway)
		return served
	}
	// The deadline bounded the wait for the header. Lift it unless the whole body is
	// already buffered (then nothing more is read for this request, and the next one
	// sets its own deadline): one deadline change less on the common small response.
	if resp.StatusCode == http.StatusSwitchingProtocols || !(resp.Body == http.NoBody ||
		resp.ContentLength >= 0 && int64(c.br.Buffered()) >= resp.ContentLength) {
		c.nc.SetReadDeadline(time.Time{})
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		if !stop() {
			c.nc.SetDeadline(time.Time{})
		}
		x.cw.switchProtocols(x, c, resp)
		return served
	}

	body := x.cw.writeResponse(x, c, resp)
	if stop() && body == bodyComplete && !resp.Close && !x.r.Close {
		b.put(c, x.now)
		return served
	}
	c.nc.Close()
	if body == bodyUpstreamFailed {
		x.cw.abort()
	}
	return served
}

// retryAfterFailure decides what follows a request that failed before the app could
// have acted on it: a reused connection the app had closed is retried once on a new
// connection to the same address; a new connection that failed means the address is
// going away.
func (s *Server) retryAfterFailure(x *exchange, up *upstream, b *backend, c *upConn) outcome {
	if x.ctx.Err() != nil {
		return served
	}
	if c.reused {
		return s.attempt(x, up, b, false)
	}
	if b.markBad() {
		s.log.Warn("upstream address reset a new connection; skipping it for a while", "upstream", up.key, "addr", b.addr)
	}
	up.resolveSoon()
	return tryAnother
}

// aLongTimeAgo is a deadline in the past, which makes blocked I/O return at once.
var aLongTimeAgo = time.Unix(1, 0)

// closedOrReset reports whether err says the connection was closed or reset
// (http.ReadResponse reports a close before the status line as io.ErrUnexpectedEOF).
func closedOrReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readResponse reads the response header, skipping 1xx interim responses other than 101.
func readResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 100 {
			return resp, nil
		}
	}
}

// hopHeaders are not forwarded in either direction (RFC 9110 section 7.6.1), plus the
// headers the edge sets itself.
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-Ip":
		return true
	}
	return false
}

func skipResponseHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// writeRequest writes r as an HTTP/1.1 request on c. The client's X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host, Forwarded and X-Real-IP are dropped, never
// trusted: the edge is the first proxy, so it writes the three X-Forwarded-* headers from
// what it saw itself.
func (s *Server) writeRequest(x *exchange, c *upConn) error {
	r, bw := x.r, c.bw
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' && uri != "*" {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")

	connTokens := connectionTokens(r.Header["Connection"]) // named there: hop-by-hop too
	for k, vv := range r.Header {
		if skipRequestHeader(k) {
			if k == "Te" && headerHasToken(vv, "trailers") {
				bw.WriteString("Te: trailers\r\n")
			}
			continue
		}
		if len(connTokens) > 0 && containsString(connTokens, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.WriteString(x.clientIP)
	if x.https {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
	}
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	if x.upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.WriteString(x.upgrade)
		bw.WriteString("\r\n")
	}

	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		var num [20]byte
		bw.Write(strconv.AppendInt(num[:0], r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if err := copyBody(bw, r.Body, r.ContentLength, x.maxBody); err != nil {
			return err
		}
	case !bodyless(r):
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if err := copyBody(cw, r.Body, -1, x.maxBody); err != nil {
			return err
		}
		cw.Close()
		bw.WriteString("\r\n")
	default:
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// copyBody copies the client's body to the upstream: exactly n bytes when n >= 0, else
// up to EOF, and at most max bytes when max > 0.
func copyBody(dst io.Writer, body io.Reader, n, max int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for n < 0 || total < n {
		p := buf
		if n >= 0 && int64(len(p)) > n-total {
			p = p[:n-total]
		}
		k, rerr := body.Read(p)
		total += int64(k)
		if max > 0 && total > max {
			return errClientBody{errBodyTooLarge}
		}
		if k > 0 {
			if _, err := dst.Write(p[:k]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			if n >= 0 && total < n {
				return errClientBody{io.ErrUnexpectedEOF}
			}
			return nil
		}
		if rerr != nil {
			return errClientBody{rerr}
		}
	}
	return nil
}

// bodyResult says how copying a response body ended.
type bodyResult int

const (
	bodyComplete       bodyResult = iota // read to its end: the connection can be reused
	bodyClientGone                       // the client stopped reading
	bodyUpstreamFailed                   // the upstream failed mid-body
)

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// bodyless reports whether r has no body.
func bodyless(r *http.Request) bool {
	return r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody)
}

// idempotent reports whether sending r twice is safe (RFC 9110 section 9.2.2), or the
// client said so with an Idempotency-Key.
func idempotent(r *http.Request) bool {
	if idempotentMethod(r.Method) {
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	return ok
}

func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// connectionTokens returns the header names listed in Connection values, canonicalized;
// nil (no allocation) in the usual case of none or only keep-alive/close/upgrade.
func connectionTokens(values []string) []string {
	var out []string
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok == "" || strings.EqualFold(tok, "keep-alive") || strings.EqualFold(tok, "close") || strings.EqualFold(tok, "upgrade") {
				continue
			}
			out = append(out, http.CanonicalHeaderKey(tok))
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isClosedConn reports whether err says a listener or connection was closed.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}
