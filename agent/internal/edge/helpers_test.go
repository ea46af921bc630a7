package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"

	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// bundle is a running edge on loopback and clients that reach it whatever the URL's
// host, so tests can use real host names.
type bundle struct {
	s         *Server
	httpAddr  string
	httpsAddr string
	ca        *testCA
	// http and https send every request to the edge's listeners; https trusts ca and
	// speaks HTTP/1.1, h2 speaks HTTP/2.
	http, https, h2 *http.Client
}

type setupOptions struct {
	configPath string
	resolve    func(context.Context, string) ([]netip.Addr, error)
}

func setup(t *testing.T, so setupOptions) *bundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Options{
		ConfigPath: so.configPath, Logger: log, Resolve: so.resolve,
		PollInterval: 20 * time.Millisecond, ResolveInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, hl, tl) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	b := &bundle{s: s, httpAddr: hl.Addr().String(), httpsAddr: tl.Addr().String(), ca: newTestCA(t)}
	dialTo := func(addr string) func(ctx context.Context, _, _ string) (net.Conn, error) {
		return func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	b.http = &http.Client{
		Transport: &http.Transport{DialContext: dialTo(b.httpAddr)},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 20 * time.Second,
	}
	tlsCfg := &tls.Config{RootCAs: b.ca.pool}
	b.https = &http.Client{
		Transport: &http.Transport{DialContext: dialTo(b.httpsAddr), TLSClientConfig: tlsCfg},
		Timeout:   20 * time.Second,
	}
	b.h2 = &http.Client{
		Transport: &http.Transport{DialContext: dialTo(b.httpsAddr), TLSClientConfig: tlsCfg.Clone(), ForceAttemptHTTP2: true},
		Timeout:   20 * time.Second,
	}
	t.Cleanup(func() {
		for _, c := range []*http.Client{b.http, b.https, b.h2} {
			c.CloseIdleConnections()
		}
	})
	return b
}

func (b *bundle) apply(t *testing.T, cfg Config) {
	t.Helper()
	if err := b.s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
}

// get sends a GET through c and returns the status and body.
func get(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

// testApp is an app on loopback that answers with its name.
type testApp struct {
	name string
	srv  *http.Server
	addr string
	mu   sync.Mutex
	hits int
	last *http.Request
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *testApp {
	t.Helper()
	return newBackendOn(t, name, "127.0.0.1:0", h)
}

func newBackendOn(t *testing.T, name, addr string, h http.HandlerFunc) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &testApp{name: name, addr: ln.Addr().String()}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits++
		b.last = r
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, name)
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *testApp) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

func (b *testApp) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testCA issues server certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a Certificate for hosts.
func (ca *testCA) issue(t *testing.T, hosts ...string) Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Certificate{
		Hosts:   hosts,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}
}

// staticResolver resolves every name to addrs (nil: not found).
func staticResolver(addrs ...string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}
