package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"skypanel/controlplane/internal/nodes"
	"skypanel/shared/chanlisten"
)

// agentServer serves the agent listener: TLS with node certificates, then HTTP/2 (every agent
// speaks it) or HTTP/1.1 (anything else).
//
// It hands HTTP/2 connections to golang.org/x/net/http2's server from its own goroutine per
// connection instead of letting net/http's Server do it, because a control plane holds one
// connection per node, thousands of them, and the difference is memory: net/http runs an
// HTTP/2 connection inside its HTTP/1 connection goroutine, whose frames under HTTP/2's make
// 3.5 KiB in use while the connection waits, more than Go lets a parked goroutine keep in an
// 8 KiB stack, so each such goroutine holds 16 KiB for the connection's life. From here the
// frames in use stay under that and the stack shrinks to 8 KiB. Measured in
// docs/benchmarks.md (node agents).
type agentServer struct {
	h1      *http.Server // serves HTTP/1.1 connections; its handler and settings serve HTTP/2 too
	h2      *http2.Server
	logger  *slog.Logger
	h1conns chan net.Conn // HTTP/1.1 connections for h1, through h1ln
	h1ln    *chanlisten.Listener
	base    context.Context // every request's base context (h1.BaseContext's)

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{} // handshaking and HTTP/2 connections
	closing bool
	wg      sync.WaitGroup
}

// agentEncoderTable is the HPACK dynamic table size for what the control plane sends agents.
// 1 byte holds no entry (an entry counts at least 32 bytes), so no connection keeps a table
// and its maps, about 3.5 KiB; response headers go as Huffman-coded literals instead. What
// agents send is left at the default table size: a client may send its first request before
// it reads the server's settings, with the default table, and a smaller limit here would
// refuse it (COMPRESSION_ERROR). Agents keep that table empty from their side instead
// (agent/internal/link).
const agentEncoderTable = 1

func newAgentServer(h1 *http.Server, tlsConf *tls.Config, logger *slog.Logger) (*agentServer, error) {
	h2s := &http2.Server{
		MaxEncoderHeaderTableSize: agentEncoderTable,
		IdleTimeout:               h1.IdleTimeout,
	}
	h1.TLSConfig = tlsConf
	// Registers the graceful shutdown (GOAWAY) of every HTTP/2 connection with h1.Shutdown.
	if err := http2.ConfigureServer(h1, h2s); err != nil {
		return nil, err
	}
	base := context.Background()
	if h1.BaseContext != nil {
		base = h1.BaseContext(nil)
	}
	return &agentServer{h1: h1, h2: h2s, logger: logger, base: base,
		conns: make(map[net.Conn]struct{})}, nil
}

// Serve accepts connections on ln until Shutdown (it then returns http.ErrServerClosed).
func (a *agentServer) Serve(ln net.Listener) error {
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return http.ErrServerClosed
	}
	a.ln = ln
	a.h1conns = make(chan net.Conn)
	a.h1ln = chanlisten.New(a.h1conns, ln.Addr())
	a.mu.Unlock()
	h1done := make(chan error, 1)
	go func() { h1done <- a.h1.Serve(a.h1ln) }()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if a.isClosing() {
				<-h1done
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or the like: wait and try again, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				a.logger.Warn("agent listener: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !a.track(c) {
			c.Close()
			continue
		}
		go a.serveConn(c)
	}
}

// serveConn runs the TLS handshake, then serves the connection with HTTP/2 or hands it to the
// HTTP/1.1 server.
func (a *agentServer) serveConn(c net.Conn) {
	tc := tls.Server(c, a.h1.TLSConfig)
	if !a.handshake(tc) {
		a.untrack(c)
		tc.Close()
		return
	}
	if !negotiatedH2(tc) {
		a.untrack(c)
		select {
		case a.h1conns <- tc:
		case <-a.h1ln.Done():
			tc.Close()
		}
		return
	}
	defer a.untrack(c)
	// The connection's mark tells a node's reports that they share its command stream's
	// connection (nodes.WithConnection).
	a.h2.ServeConn(tc, &http2.ServeConnOpts{Context: nodes.WithConnection(a.base), BaseConfig: a.h1, Handler: a.h1.Handler})
}

// handshake runs the TLS handshake within the HTTP/1 server's header timeout and logs a
// failure as net/http does. It is out of serveConn's frame on purpose: the handshake's locals
// must not stay on the stack the connection then waits on.
//
//go:noinline
func (a *agentServer) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), a.h1.ReadHeaderTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		a.logger.Warn("agent listener: TLS handshake", "remote", tc.RemoteAddr().String(), "err", err)
		return false
	}
	return true
}

// negotiatedH2 reports whether the client chose HTTP/2 (out of serveConn's frame like handshake:
// a ConnectionState is some 300 bytes).
//
//go:noinline
func negotiatedH2(tc *tls.Conn) bool {
	return tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS
}

func (a *agentServer) track(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return false
	}
	a.conns[c] = struct{}{}
	a.wg.Add(1)
	return true
}

func (a *agentServer) untrack(c net.Conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	a.wg.Done()
}

func (a *agentServer) isClosing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closing
}

// Shutdown stops accepting, tells every HTTP/2 connection to finish (GOAWAY) and runs the
// HTTP/1 server's shutdown hooks (which end the command streams), then waits for the
// connections to close until ctx ends, and closes what is left.
func (a *agentServer) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closing = true
	if a.ln != nil {
		a.ln.Close()
	}
	a.mu.Unlock()
	err := a.h1.Shutdown(ctx) // closes h1ln too
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.mu.Lock()
		for c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}
