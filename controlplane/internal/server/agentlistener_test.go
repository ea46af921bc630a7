package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// selfSigned is a server certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent listener test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startAgentServer serves handler on a loopback agent listener; the returned channel gets
// Serve's result.
func startAgentServer(t *testing.T, handler http.Handler, headerTimeout time.Duration) (*agentServer, string, *x509.CertPool, chan error) {
	t.Helper()
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h1 := &http.Server{Handler: handler, ReadHeaderTimeout: headerTimeout, IdleTimeout: time.Minute}
	a, err := newAgentServer(h1, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a, "https://" + ln.Addr().String(), pool, served
}

func TestTheAgentListenerServesHTTP2AndHTTP1(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	})
	_, url, pool, _ := startAgentServer(t, handler, 5*time.Second)

	h2c := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h1c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}}}
	for name, c := range map[string]*http.Client{"HTTP/2.0": h2c, "HTTP/1.1": h1c} {
		for i := range 3 { // the connection is kept and reused
			resp, err := c.Get(url + "/ping")
			if err != nil {
				t.Fatalf("%s request %d: %v", name, i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := name + " /ping"; string(body) != want {
				t.Fatalf("%s request %d: got %q, want %q", name, i, body, want)
			}
		}
	}
}

func TestTheAgentListenerDropsAConnectionThatNeverShakesHands(t *testing.T) {
	_, url, _, _ := startAgentServer(t, http.NotFoundHandler(), 300*time.Millisecond)
	c, err := net.Dial("tcp", url[len("https://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent client kept its connection for %s (read: %v); want it closed after the handshake timeout", time.Since(start), err)
	}
}

func TestShutdownEndsOpenStreamsThroughTheShutdownHooks(t *testing.T) {
	started := make(chan struct{})
	stop := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(started)
		<-stop // a command stream: it ends when the control plane stops its sessions
	})
	a, url, pool, served := startAgentServer(t, handler, 5*time.Second)
	var once sync.Once
	a.h1.RegisterOnShutdown(func() { once.Do(func() { close(stop) }) })

	c := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
	if _, err := c.Get(url + "/again"); err == nil {
		t.Fatal("a request after shutdown was served")
	}
}

// A client may send its first requests before it reads the server's settings, compressing
// their headers with the default 4 KiB HPACK table, the second referring to entries the first
// added: the listener must take them (it once answered COMPRESSION_ERROR and dropped the
// connection).
func TestTheAgentListenerTakesFirstRequestsCompressedWithTheDefaultTable(t *testing.T) {
	_, url, pool, _ := startAgentServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Agent"))
	}), 5*time.Second)
	conn, err := tls.Dial("tcp", url[len("https://"):], &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block) // the default table: the second request's fields are indexed
	for _, stream := range []uint32{1, 3} {
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "agent.test"},
			{":path", "/first"}, {"x-agent", "node-1"}} {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answered := map[uint32]bool{}
	for len(answered) < 2 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("answers to the first requests: %v (got %v)", err, answered)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("the listener dropped the connection: GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("the listener reset stream %d: %v", f.StreamID, f.ErrCode)
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if got := string(f.Data()); got != "node-1" {
				t.Fatalf("stream %d answered %q, want node-1", f.StreamID, got)
			}
			answered[f.StreamID] = true
		}
	}
}
