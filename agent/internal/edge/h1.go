package edge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// HTTP/1.x connections (plain, and TLS that did not negotiate h2) are served by the
// loop below rather than by net/http's server: per request, net/http starts a goroutine
// that reads ahead on the connection (to notice a client leaving) and then stops it,
// which on small proxied requests costs as much CPU as the rest of the edge. The loop
// reads requests with http.ReadRequest (net/http's own parser), checks what net/http's
// server checks, and writes responses straight to the connection. The price: while the
// edge waits for an app's response it does not notice a client that went away; it finds
// out on its first write, or at UpstreamTimeout.
//
// On Linux, event loops serve the plain-HTTP listener instead (loop_linux.go); its
// connections come here (adoptH1) only for what the loops leave to this path: bodies,
// upgrades, the edge's own pages and anything unusual.

const maxHeaderBytes = 64 << 10

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// limitReader passes reads through to the connection while remain is positive, so a
// request header cannot exceed maxHeaderBytes.
type limitReader struct {
	r      io.Reader
	remain int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.remain <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.r.Read(p)
	l.remain -= int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("request header too large")

var crlfcrlf = []byte("\r\n\r\n")

// h1conn is one client connection speaking HTTP/1.x.
type h1conn struct {
	s        *Server
	nc       net.Conn
	https    bool
	remoteIP string
	lr       limitReader
	br       *bufio.Reader
	bw       *bufio.Writer
	idle     atomic.Bool // waiting for the next request
	hijacked bool        // upgraded: the connection belongs to the tunnel now

	// Per-request state.
	req       *http.Request
	keepAlive bool
}

// serveH1 serves requests on nc until the client closes it, a request asks to close,
// or the edge shuts down.
func (s *Server) serveH1(nc net.Conn, https bool) {
	c := &h1conn{s: s, nc: nc, https: https}
	if !s.track(c, true) {
		nc.Close()
		return
	}
	s.runH1(c, nil)
}

// adoptH1 takes over a plain-HTTP connection from an event loop, which has already read
// pre from it (the start of a request the loop does not serve itself). The connection is
// tracked before adoptH1 returns, even while the edge drains: a request is under way.
func (s *Server) adoptH1(nc net.Conn, pre []byte) {
	c := &h1conn{s: s, nc: nc}
	s.connMu.Lock()
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.connMu.Unlock()
	go s.runH1(c, pre)
}

// runH1 is serveH1's loop over requests, for a tracked connection, starting with the
// bytes in pre.
func (s *Server) runH1(c *h1conn, pre []byte) {
	nc := c.nc
	defer s.track(c, false)
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			s.log.Error("edge: panic serving a connection", "panic", p)
		}
		if !c.hijacked {
			nc.Close()
		}
		if c.br != nil {
			c.br.Reset(nil)
			h1Readers.Put(c.br)
			c.bw.Reset(nil)
			h1Writers.Put(c.bw)
		}
	}()
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remoteIP = a.IP.String()
	} else if ip, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		c.remoteIP = ip
	}
	c.lr.r = nc
	if len(pre) > 0 {
		c.lr.r = io.MultiReader(bytes.NewReader(pre), nc)
	}
	c.br = h1Readers.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	c.bw = h1Writers.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	if len(pre) > 0 {
		c.br.Peek(1) // buffers pre without blocking, so the loop below sees a request under way
	}

	for {
		lim := s.table.Load().limits
		c.lr.remain = maxHeaderBytes
		if c.br.Buffered() == 0 {
			// Wait for the next request, at most IdleTimeout.
			// (drainH1 relies on this order: idle, deadline, then the draining check.)
			c.idle.Store(true)
			nc.SetReadDeadline(time.Now().Add(time.Duration(lim.IdleTimeout)))
			if s.draining.Load() {
				return
			}
			_, err := c.br.Peek(1)
			c.idle.Store(false)
			if err != nil {
				return
			}
		}
		// Bound the header read, unless the whole header is already here (the usual
		// case: then reading it cannot block).
		if b, _ := c.br.Peek(c.br.Buffered()); !bytes.Contains(b, crlfcrlf) {
			nc.SetReadDeadline(time.Now().Add(time.Duration(lim.ReadHeaderTimeout)))
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.As(err, &ne) && ne.Timeout():
			case errors.Is(err, errHeaderTooLarge):
				c.writeError(http.StatusRequestHeaderFieldsTooLarge)
			default:
				c.writeError(http.StatusBadRequest)
			}
			return
		}
		c.lr.remain = math.MaxInt64
		if !bodyless(req) {
			nc.SetReadDeadline(time.Time{}) // a body may take its time
		}
		if code := checkRequest(req); code != 0 {
			c.writeError(code)
			return
		}
		req.RemoteAddr = c.remoteIP
		c.req = req
		c.keepAlive = !req.Close && !s.draining.Load()

		if ex := req.Header["Expect"]; len(ex) > 0 {
			if len(ex) != 1 || !httpguts.HeaderValuesContainsToken(ex, "100-continue") {
				c.keepAlive = false
				c.writeSimple(http.StatusExpectationFailed, "", "", "")
				return
			}
			if !bodyless(req) {
				c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
				if c.bw.Flush() != nil {
					return
				}
			}
		}

		s.handle(c, req, c.https)
		if c.hijacked {
			return
		}
		if c.keepAlive && !bodyless(req) {
			// The body must have been read to its end for the next request to start.
			if _, err := req.Body.Read(nil); !errors.Is(err, io.EOF) {
				if n, _ := io.CopyN(io.Discard, req.Body, 256<<10); n == 256<<10 {
					c.keepAlive = false
				}
			}
		}
		if c.br.Buffered() == 0 || !c.keepAlive {
			if c.bw.Flush() != nil {
				return
			}
		}
		if !c.keepAlive {
			return
		}
		c.req = nil
	}
}

// checkRequest applies net/http's server-side checks that http.ReadRequest leaves out;
// it returns the status to refuse the request with, or 0.
func checkRequest(r *http.Request) int {
	if r.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported
	}
	if r.ProtoMinor >= 1 && r.Host == "" && r.Method != http.MethodConnect {
		return http.StatusBadRequest
	}
	if r.Host != "" && !httpguts.ValidHostHeader(r.Host) {
		return http.StatusBadRequest
	}
	if r.Method == http.MethodConnect {
		return http.StatusMethodNotAllowed
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest
			}
		}
	}
	return 0
}

// writeError answers a request the edge could not read; the connection closes after.
func (c *h1conn) writeError(code int) {
	c.keepAlive = false
	text := strconv.Itoa(code) + " " + http.StatusText(code)
	c.bw.WriteString("HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(text)+1) + "\r\n\r\n" + text + "\n")
	c.bw.Flush()
}

func (c *h1conn) writeStatus(code int) {
	c.bw.WriteString("HTTP/1.1 ")
	var num [8]byte
	c.bw.Write(strconv.AppendInt(num[:0], int64(code), 10))
	c.bw.WriteByte(' ')
	c.bw.WriteString(http.StatusText(code))
	c.bw.WriteString("\r\n")
}

func (c *h1conn) writeConnection() {
	switch {
	case !c.keepAlive:
		c.bw.WriteString("Connection: close\r\n")
	case c.req.ProtoMinor == 0:
		c.bw.WriteString("Connection: keep-alive\r\n")
	}
}

func (c *h1conn) writeSimple(code int, contentType, body, location string) {
	c.writeStatus(code)
	if contentType != "" {
		c.bw.WriteString("Content-Type: ")
		c.bw.WriteString(contentType)
		c.bw.WriteString("\r\nCache-Control: no-store\r\n")
	}
	if location != "" {
		c.bw.WriteString("Location: ")
		c.bw.WriteString(location)
		c.bw.WriteString("\r\n")
	}
	c.writeConnection()
	c.bw.WriteString("Content-Length: ")
	var num [20]byte
	c.bw.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
	c.bw.WriteString("\r\n\r\n")
	if c.req == nil || c.req.Method != http.MethodHead {
		c.bw.WriteString(body)
	}
}

// writeResponse writes the app's response: its status and end-to-end headers, framed
// for this client (Content-Length when known, else chunked for HTTP/1.1 or
// close-delimited for HTTP/1.0), and streams the body, flushing whenever the app has
// nothing more buffered.
func (c *h1conn) writeResponse(x *exchange, u *upConn, resp *http.Response) bodyResult {
	bw := c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(resp.Status)
	bw.WriteString("\r\n")
	connTokens := connectionTokens(resp.Header["Connection"])
	for k, vv := range resp.Header {
		if skipResponseHeader(k) || k == "Content-Length" || len(connTokens) > 0 && containsString(connTokens, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	noBody := resp.Body == http.NoBody || c.req.Method == http.MethodHead
	chunked := false
	var num [20]byte
	switch {
	case noBody:
		if cl := resp.Header["Content-Length"]; len(cl) == 1 {
			bw.WriteString("Content-Length: ")
			bw.WriteString(cl[0])
			bw.WriteString("\r\n")
		}
	case resp.ContentLength >= 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], resp.ContentLength, 10))
		bw.WriteString("\r\n")
	case c.req.ProtoMinor >= 1:
		chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		for k := range resp.Trailer {
			bw.WriteString("Trailer: ")
			bw.WriteString(k)
			bw.WriteString("\r\n")
		}
	default:
		c.keepAlive = false // an HTTP/1.0 client reads to the close
	}
	c.writeConnection()
	bw.WriteString("\r\n")
	if noBody {
		return bodyComplete
	}

	var dst io.Writer = bw
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(bw)
		dst = cw
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	remaining := resp.ContentLength // -1: unknown
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.keepAlive = false
				return bodyClientGone
			}
			if remaining > 0 {
				remaining -= int64(n)
			}
		}
		if rerr == io.EOF || remaining == 0 {
			break
		}
		if rerr != nil {
			c.keepAlive = false
			if chunked || remaining > 0 {
				bw.Flush()
				c.nc.Close() // the client sees a truncated response, not a complete one
			}
			return bodyUpstreamFailed
		}
		if u.br.Buffered() == 0 {
			if bw.Flush() != nil {
				c.keepAlive = false
				return bodyClientGone
			}
		}
	}
	if chunked {
		cw.Close()
		for k, vv := range resp.Trailer {
			for _, v := range vv {
				bw.WriteString(k)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
		bw.WriteString("\r\n")
	}
	if resp.Body.Close() != nil {
		return bodyClientGone
	}
	return bodyComplete
}

// switchProtocols completes an upgrade (WebSocket and the like): it passes the app's 101
// to the client and then copies bytes both ways until either side closes.
// abort ends a response whose body failed mid-way; writeResponse already closed the
// connection.
func (c *h1conn) abort() {}

func (c *h1conn) switchProtocols(x *exchange, u *upConn, resp *http.Response) {
	defer u.nc.Close()
	if x.upgrade == "" {
		c.keepAlive = false
		writePage(c, http.StatusBadGateway, pageBadGateway)
		return
	}
	c.hijacked = true
	defer c.nc.Close()
	c.bw.WriteString("HTTP/1.1 ")
	c.bw.WriteString(resp.Status)
	c.bw.WriteString("\r\n")
	resp.Header.Write(c.bw)
	c.bw.WriteString("\r\n")
	if c.bw.Flush() != nil {
		return
	}
	c.nc.SetDeadline(time.Time{})
	tunnel(c.nc, c.br, u.nc, u.br)
}

// tunnel copies a↔b (reading each through its buffered reader, which may already hold
// bytes) until both directions end.
func tunnel(a net.Conn, ar io.Reader, b net.Conn, br io.Reader) {
	done := make(chan struct{})
	go func() {
		io.Copy(b, ar)
		closeWrite(b)
		close(done)
	}()
	io.Copy(a, br)
	closeWrite(a)
	<-done
}

// track registers (add) or forgets a connection for graceful shutdown; it refuses new
// connections once the edge is draining.
func (s *Server) track(c *h1conn, add bool) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if add {
		if s.draining.Load() {
			return false
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		return true
	}
	delete(s.conns, c)
	s.connWG.Done()
	return true
}

// drainH1 asks every HTTP/1.x connection to finish: idle ones close now, busy ones after
// their current response (which says Connection: close). After timeout the rest are
// closed.
func (s *Server) drainH1(timeout time.Duration) {
	s.draining.Store(true)
	s.loops.drain()
	s.connMu.Lock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	s.connMu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	s.connMu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.connMu.Unlock()
	s.loops.closeAll()
	<-done
}
