package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"skypanel/shared/chanlisten"
)

// HTTP/2 (TLS connections that negotiated h2) is served by net/http's server, fed the
// already-handshaken connections through a chanlisten.Listener.

// h2client is the client side of an exchange on an HTTP/2 stream.
type h2client struct {
	w http.ResponseWriter
	r *http.Request
}

func (s *Server) serveH2Request(w http.ResponseWriter, r *http.Request) {
	s.handle(&h2client{w: w, r: r}, r, true)
}

func (c *h2client) writeSimple(code int, contentType, body, location string) {
	h := c.w.Header()
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
		h["Cache-Control"] = []string{"no-store"}
	}
	if location != "" {
		h["Location"] = []string{location}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	c.w.WriteHeader(code)
	io.WriteString(c.w, body)
}

func (c *h2client) abort() { panic(http.ErrAbortHandler) }

// switchProtocols cannot happen: HTTP/2 has no Upgrade (extended CONNECT is off in
// net/http by default), so an app's 101 is an error.
func (c *h2client) switchProtocols(x *exchange, u *upConn, resp *http.Response) {
	u.nc.Close()
	writePage(c, http.StatusBadGateway, pageBadGateway)
}

func (c *h2client) writeResponse(x *exchange, u *upConn, resp *http.Response) bodyResult {
	w := c.w
	h := w.Header()
	connTokens := connectionTokens(resp.Header["Connection"])
	for k, vv := range resp.Header {
		if skipResponseHeader(k) || len(connTokens) > 0 && containsString(connTokens, k) {
			continue
		}
		h[k] = vv
	}
	if _, ok := resp.Header["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: send what the app sent
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)

	body := resp.Body
	if body == http.NoBody {
		return bodyComplete
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	flusher, _ := w.(http.Flusher)
	remaining := resp.ContentLength // -1: unknown
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return bodyClientGone
			}
			if remaining > 0 {
				remaining -= int64(k)
			}
		}
		if rerr == io.EOF || remaining == 0 {
			break
		}
		if rerr != nil {
			if x.ctx.Err() != nil {
				return bodyClientGone
			}
			return bodyUpstreamFailed
		}
		// Stream: send what we have whenever the app has nothing more for us right now
		// (server-sent events, long polls).
		if u.br.Buffered() == 0 && flusher != nil {
			flusher.Flush()
		}
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	if resp.Body.Close() != nil {
		return bodyClientGone
	}
	return bodyComplete
}

// h2loop runs the net/http server for HTTP/2 connections. Its idle timeout lives in an
// http.Server, which cannot change while it serves: a change of limits starts a new one
// on the same connection feed and shuts the old one down gracefully.
type h2loop struct {
	s     *Server
	conns chan net.Conn
	addr  net.Addr

	mu  sync.Mutex
	cur *http.Server
}

func (l *h2loop) run(ctx context.Context) {
	l.restart()
	<-ctx.Done()
	l.mu.Lock()
	srv := l.cur
	l.cur = nil
	l.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
}

// restart starts an http.Server with the limits in force and retires the previous one.
func (l *h2loop) restart() {
	lim := l.s.table.Load().limits
	srv := &http.Server{
		Handler:           http.HandlerFunc(l.s.serveH2Request),
		ReadHeaderTimeout: time.Duration(lim.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(lim.IdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		// Its NextProtos (h2) make Serve set up HTTP/2, which writes to the config: a copy
		// each, as a restart runs two servers at once.
		TLSConfig: l.s.tlsConfig.Clone(),
		ErrorLog:  slog.NewLogLogger(l.s.log.Handler(), slog.LevelDebug),
	}
	cl := chanlisten.New(l.conns, l.addr)
	l.mu.Lock()
	old := l.cur
	if old == nil && l.s.draining.Load() {
		l.mu.Unlock()
		return
	}
	l.cur = srv
	l.mu.Unlock()
	go func() {
		if err := srv.Serve(cl); err != nil && !errors.Is(err, http.ErrServerClosed) && !isClosedConn(err) {
			l.s.log.Error("edge: http/2 server", "error", err)
		}
	}()
	if old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := old.Shutdown(ctx); err != nil {
				old.Close()
			}
		}()
	}
}
