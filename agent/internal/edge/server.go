// Package edge is SkyPanel's HTTP(S) edge proxy. It runs on edge-labelled Swarm nodes
// as a plain container publishing ports 80 and 443, connected to every organization's
// overlay network, and routes requests by Host to app services.
//
// The agent feeds it a Config through a file (WriteConfig); the edge reloads the file
// when it changes. Services use dnsrr endpoints, so a service name resolves to every
// task's address: the edge resolves each upstream name every second and spreads
// requests over the addresses itself, round-robin. An address that refuses connections
// is skipped for a few seconds, and a request that did not reach the app (the connection
// could not be made, or was reset before the app could have read the request) is sent to
// another address, so rolling updates lose no requests.
//
// Forwarding headers: the edge is the first proxy, so it trusts nothing a client sends
// about itself. It drops incoming X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host,
// Forwarded and X-Real-IP and sets X-Forwarded-For (the client's address as the edge saw
// it), X-Forwarded-Proto (http or https) and X-Forwarded-Host (the Host the client
// asked for). The Host header itself is passed through unchanged.
package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configure a Server. Zero fields mean the default.
type Options struct {
	// ConfigPath is the configuration file to load at start and reload on change. Empty
	// means the configuration comes only from Apply. A file that does not exist yet
	// serves nothing (404 for every host) until it appears.
	ConfigPath string
	// HTTPAddr and HTTPSAddr are the listen addresses Run uses. Default ":80" and ":443".
	HTTPAddr  string
	HTTPSAddr string
	// Logger receives the edge's logs. Default: discard.
	Logger *slog.Logger
	// PollInterval is how often the configuration file is checked for a change (a stat).
	// Default 200 ms.
	PollInterval time.Duration
	// ResolveInterval is how often upstream names are resolved again. Default 1 s.
	ResolveInterval time.Duration
	// Resolve resolves an upstream name to its addresses. Default: the system resolver
	// (Docker's embedded DNS inside the edge container).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// HTTPSPort is the public port of the HTTPS listener, used in redirects. Default:
	// the port the HTTPS listener is bound to.
	HTTPSPort int
}

// Server is the edge: its listeners, the current routing table and the upstream pools.
type Server struct {
	opts      Options
	log       *slog.Logger
	table     atomic.Pointer[table]
	fallback  *tls.Certificate
	tlsConfig *tls.Config
	// baseCtx bounds upstream dials of HTTP/1.x requests; it ends when Serve returns.
	baseCtx context.Context

	mu      sync.Mutex // serializes Apply
	limitCh chan struct{}
	closed  bool

	// HTTP/1.x connections, for graceful shutdown.
	connMu   sync.Mutex
	conns    map[*h1conn]struct{}
	connWG   sync.WaitGroup // also counts the event loops' connections
	draining atomic.Bool
	loops    *loopGroup // the plain-HTTP listener's event loops; nil: goroutines serve it
}

// New returns a Server serving an empty configuration.
func New(opts Options) (*Server, error) {
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = ":80"
	}
	if opts.HTTPSAddr == "" {
		opts.HTTPSAddr = ":443"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.ResolveInterval <= 0 {
		opts.ResolveInterval = time.Second
	}
	if opts.Resolve == nil {
		opts.Resolve = lookupAlone(nil)
	}
	fallback, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("edge: fallback certificate: %w", err)
	}
	s := &Server{
		opts: opts, log: opts.Logger, fallback: fallback, limitCh: make(chan struct{}, 1),
		conns: map[*h1conn]struct{}{}, baseCtx: context.Background(),
	}
	s.tlsConfig = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	t, err := compile(Config{}, nil, nil)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	return s, nil
}

// Apply validates cfg and makes it the configuration in force. Requests in flight finish
// on the configuration they started with.
func (s *Server) Apply(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("apply edge config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("apply edge config: the edge has stopped")
	}
	prev := s.table.Load()
	t, err := compile(cfg, prev, func(key string) (*upstream, error) {
		return newUpstream(key, s.opts.ResolveInterval, s.opts.Resolve, s.log)
	})
	if err != nil {
		return fmt.Errorf("apply edge config: %w", err)
	}
	s.table.Store(t)
	for key, up := range prev.upstreams {
		if t.upstreams[key] != up {
			go up.close()
		}
	}
	if t.limits.ReadHeaderTimeout != prev.limits.ReadHeaderTimeout || t.limits.IdleTimeout != prev.limits.IdleTimeout {
		select {
		case s.limitCh <- struct{}{}:
		default:
		}
	}
	s.log.Info("edge configuration applied", "routes", len(cfg.Routes), "certificates", len(cfg.Certificates),
		"challenges", len(cfg.Challenges), "upstreams", len(t.upstreams))
	return nil
}

// Run listens on opts.HTTPAddr and opts.HTTPSAddr and serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("edge: listen http: %w", err)
	}
	httpsLn, err := net.Listen("tcp", s.opts.HTTPSAddr)
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("edge: listen https: %w", err)
	}
	return s.Serve(ctx, httpLn, httpsLn)
}

// Serve serves plain HTTP on httpLn and HTTPS on httpsLn (either may be nil) until ctx
// ends, reloading opts.ConfigPath when it changes. Then it stops accepting, lets requests
// in flight finish (up to 10 s), and closes the listeners and upstream connections. A
// Server serves once.
func (s *Server) Serve(ctx context.Context, httpLn, httpsLn net.Listener) error {
	if s.opts.HTTPSPort == 0 && httpsLn != nil {
		if a, ok := httpsLn.Addr().(*net.TCPAddr); ok {
			s.opts.HTTPSPort = a.Port
		}
	}
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	s.baseCtx = base
	if s.opts.ConfigPath != "" {
		s.reload(nil)
	}
	var h2 *h2loop
	if httpsLn != nil {
		h2 = &h2loop{s: s, conns: make(chan net.Conn), addr: httpsLn.Addr()}
	}
	h2ctx, stopH2 := context.WithCancel(context.Background())
	defer stopH2()
	var bg sync.WaitGroup
	if h2 != nil {
		bg.Go(func() { h2.run(h2ctx) })
	}

	g, gctx := errgroup.WithContext(ctx)
	if httpLn != nil {
		loops, err := s.startLoops(httpLn)
		if err != nil {
			s.log.Warn("edge: no event loops for plain HTTP; serving it with a goroutine per connection", "error", err)
		}
		if loops != nil {
			s.loops = loops
			g.Go(func() error {
				<-gctx.Done()
				loops.stopAccepting()
				return nil
			})
		} else {
			g.Go(func() error {
				return s.acceptLoop(gctx, httpLn, func(nc net.Conn) { s.serveH1(nc, false) })
			})
		}
	}
	if httpsLn != nil {
		g.Go(func() error {
			return s.acceptLoop(gctx, httpsLn, func(nc net.Conn) { s.serveTLS(h2ctx, nc, h2.conns) })
		})
	}
	g.Go(func() error {
		s.watch(gctx)
		return nil
	})
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-s.limitCh:
				if h2 != nil {
					h2.restart()
				}
			}
		}
	})
	s.log.Info("edge serving", "http", addrOf(httpLn), "https", addrOf(httpsLn))
	err := g.Wait()

	// Stop: no new connections (the accept loops closed the listeners), finish what is
	// in flight, then release everything.
	s.drainH1(10 * time.Second)
	s.loops.stop()
	stopH2()
	bg.Wait()
	cancelBase()
	s.mu.Lock()
	s.closed = true
	t := s.table.Load()
	s.mu.Unlock()
	for _, up := range t.upstreams {
		up.close()
	}
	s.log.Info("edge stopped")
	return err
}

// acceptLoop accepts connections on ln and serves each on its own goroutine until ctx
// ends; then it closes ln.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isClosedConn(err) {
				return fmt.Errorf("edge: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait and go on, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("edge accept", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go serve(nc)
	}
}

// serveTLS completes the TLS handshake, then serves HTTP/1.x itself or hands an h2
// connection to net/http's HTTP/2 server.
func (s *Server) serveTLS(h2ctx context.Context, nc net.Conn, h2conns chan<- net.Conn) {
	tc := tls.Server(nc, s.tlsConfig)
	nc.SetDeadline(time.Now().Add(time.Duration(s.table.Load().limits.ReadHeaderTimeout)))
	if err := tc.HandshakeContext(s.baseCtx); err != nil {
		s.log.Debug("edge tls handshake", "remote", nc.RemoteAddr().String(), "error", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		select {
		case h2conns <- tc:
		case <-h2ctx.Done():
			tc.Close()
		}
		return
	}
	s.serveH1(tc, true)
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// watch reloads the configuration file whenever its identity, size or mtime changes.
func (s *Server) watch(ctx context.Context) {
	if s.opts.ConfigPath == "" {
		return
	}
	last := s.statConfig()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := s.statConfig()
		if cur == last {
			continue
		}
		last = cur
		s.reload(&cur)
	}
}

type fileStamp struct {
	ino, size int64
	mtime     int64
	exists    bool
}

func (s *Server) statConfig() fileStamp {
	fi, err := os.Stat(s.opts.ConfigPath)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), exists: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
}

func (s *Server) reload(stamp *fileStamp) {
	if stamp != nil && !stamp.exists {
		s.log.Warn("edge config file is gone; keeping the configuration in force", "path", s.opts.ConfigPath)
		return
	}
	cfg, err := ReadConfig(s.opts.ConfigPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			s.log.Warn("no edge config file yet; serving no routes until it appears", "path", s.opts.ConfigPath)
		} else {
			s.log.Error("edge config not loaded; keeping the configuration in force", "error", err)
		}
		return
	}
	if err := s.Apply(cfg); err != nil {
		s.log.Error("edge config not applied", "error", err)
	}
}

// Where challenges are answered, for any host: ACME HTTP-01 ones, and domain ownership
// proofs.
const (
	acmePrefix         = "/.well-known/acme-challenge/"
	verificationPrefix = "/.well-known/skypanel-challenge/"
)

// handle answers one request: an ACME challenge, the edge's own pages, a redirect to
// HTTPS, or the app's response through the proxy.
func (s *Server) handle(cw responder, r *http.Request, https bool) {
	t := s.table.Load()
	if len(t.challenges) > 0 && strings.HasPrefix(r.URL.Path, "/.well-known/") {
		if ka, ok := t.challenges[r.URL.Path]; ok {
			cw.writeSimple(http.StatusOK, "text/plain", ka, "")
			return
		}
	}
	host := normalHost(r.Host)
	rt := t.route(host)
	switch {
	case rt == nil:
		writePage(cw, http.StatusNotFound, pageNotFound)
	case rt.suspended:
		writePage(cw, http.StatusServiceUnavailable, pageSuspended)
	case !https && rt.httpsRedirect && t.certificate(host) != nil:
		cw.writeSimple(http.StatusPermanentRedirect, "", "", s.redirectTarget(r, host))
	default:
		s.proxy(cw, r, t, rt, https)
	}
}

func (s *Server) redirectTarget(r *http.Request, host string) string {
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	target := "https://" + host
	if p := s.opts.HTTPSPort; p != 0 && p != 443 {
		target += ":" + strconv.Itoa(p)
	}
	return target + uri
}

// getCertificate picks the certificate for the client's SNI name; an unknown (or
// missing) name gets the self-signed fallback, so the handshake completes and the client
// sees a certificate error (and, if it goes on, the 404 page) rather than a reset.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c := s.table.Load().certificate(name); c != nil {
		return c, nil
	}
	return s.fallback, nil
}

// selfSigned makes the fallback certificate, valid for no name.
func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "SkyPanel edge"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
