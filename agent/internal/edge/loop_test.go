package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests speak raw HTTP/1.1 to the plain-HTTP listener, which on Linux the event
// loops serve (loop_linux.go); elsewhere they check the goroutine path the same way.

// rawConn is a client connection that writes raw bytes and reads responses.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one response to a request with method and returns it with its body.
func (c *rawConn) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatalf("read a response body: %v", err)
	}
	return resp, string(body)
}

// closedByEdge waits for the edge to close the connection.
func (c *rawConn) closedByEdge(within time.Duration) bool {
	c.nc.SetReadDeadline(time.Now().Add(within))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			for i := range 3 {
				fmt.Fprintf(w, "c%d;", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "posted %s", body)
			return
		}
		io.WriteString(w, "path "+r.URL.Path)
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"pipe.test"}, Upstream: app.addr}}})

	c := dialRaw(t, b.httpAddr)
	// Served by the loop, then a body (handed to the goroutine path), then after it.
	c.write("GET /one HTTP/1.1\r\nHost: pipe.test\r\n\r\n" +
		"HEAD /two HTTP/1.1\r\nHost: pipe.test\r\n\r\n" +
		"GET /chunked HTTP/1.1\r\nHost: pipe.test\r\n\r\n" +
		"GET /nowhere HTTP/1.1\r\nHost: unknown.test\r\n\r\n" +
		"POST /p HTTP/1.1\r\nHost: pipe.test\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /last HTTP/1.1\r\nHost: pipe.test\r\nConnection: close\r\n\r\n")
	for _, want := range []struct {
		method string
		code   int
		body   string
	}{
		{"GET", 200, "path /one"},
		{"HEAD", 200, ""},
		{"GET", 200, "c0;c1;c2;"},
		{"GET", 404, ""},
		{"POST", 200, "posted abc"},
		{"GET", 200, "path /last"},
	} {
		resp, body := c.read(want.method)
		if resp.StatusCode != want.code || want.body != "" && body != want.body {
			t.Fatalf("%s: %d %q, want %d %q", want.method, resp.StatusCode, body, want.code, want.body)
		}
	}
	if !c.closedByEdge(5 * time.Second) {
		t.Fatal("the connection stayed open after Connection: close")
	}
}

func TestRequestHeadsArrivingInPiecesAreServed(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Piece"))
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"slow.test"}, Upstream: app.addr}}})
	c := dialRaw(t, b.httpAddr)
	head := "GET / HTTP/1.1\r\nHost: slow.test\r\nX-Piece: assembled\r\n\r\n"
	for i := 0; i < 2; i++ {
		for _, piece := range []string{head[:3], head[3:17], head[17:30], head[30 : len(head)-1], head[len(head)-1:]} {
			c.write(piece)
			time.Sleep(5 * time.Millisecond) // separate segments, not waiting for anything
		}
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "assembled" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestChunkedAndCloseDelimitedResponsesKeepTheirBodiesAndTrailers(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "dropped")
		for i := range 4 {
			fmt.Fprintf(w, "%s%d;", strings.Repeat("x", 5000), i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "42")
	})
	// An app that writes an HTTP/1.1 response without a length and closes.
	raw := oneShotApp(t, "HTTP/1.1 200 OK\r\nX-Raw: yes\r\n\r\nuntil", " the close")
	b.apply(t, Config{Routes: []Route{
		{Hosts: []string{"chunks.test"}, Upstream: app.addr},
		{Hosts: []string{"raw.test"}, Upstream: raw},
	}})

	c := dialRaw(t, b.httpAddr)
	for round := range 2 {
		c.write("GET / HTTP/1.1\r\nHost: chunks.test\r\n\r\n")
		resp, body := c.read("GET")
		want := ""
		for i := range 4 {
			want += fmt.Sprintf("%s%d;", strings.Repeat("x", 5000), i)
		}
		if body != want || resp.Trailer.Get("X-Sum") != "42" || resp.Header.Get("X-Hop") != "" {
			t.Fatalf("round %d: %d bytes (want %d), trailer %v, header %v", round, len(body), len(want), resp.Trailer, resp.Header)
		}
		c.write("GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n")
		resp, body = c.read("GET")
		if body != "until the close" || resp.Header.Get("X-Raw") != "yes" || resp.Close {
			t.Fatalf("round %d: close-delimited body %q, header %v, close %v", round, body, resp.Header, resp.Close)
		}
	}
}

// TestAppClosingAPooledConnectionLosesNoRequest: an app that closes every connection
// after its response without saying so; the next request finds the pooled connection
// closed and goes on a new one.
func TestAppClosingAPooledConnectionLosesNoRequest(t *testing.T) {
	b := setup(t, setupOptions{})
	closer := oneShotApp(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"closer.test"}, Upstream: closer}}})
	c := dialRaw(t, b.httpAddr)
	for i := range 20 {
		method := "GET"
		if i%2 == 1 {
			method = "DELETE"
		}
		c.write(method + " / HTTP/1.1\r\nHost: closer.test\r\n\r\n")
		if resp, body := c.read(method); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestAllBackendsRefusingGets502AndTheConnectionStaysUsable(t *testing.T) {
	b := setup(t, setupOptions{resolve: staticResolver("127.0.0.2", "127.0.0.3")})
	live := newBackend(t, "live", nil)
	_, port, _ := net.SplitHostPort(live.addr)
	b.apply(t, Config{Routes: []Route{
		{Hosts: []string{"dead.test"}, Upstream: "dead.internal:" + port},
		{Hosts: []string{"live.test"}, Upstream: live.addr},
	}})
	c := dialRaw(t, b.httpAddr)
	c.write("GET / HTTP/1.1\r\nHost: dead.test\r\n\r\n")
	if resp, body := c.read("GET"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not answering") {
		t.Fatalf("every address refusing: %d %q", resp.StatusCode, body)
	}
	c.write("GET / HTTP/1.1\r\nHost: live.test\r\n\r\n")
	if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "live" {
		t.Fatalf("after a 502 on the same connection: %d %q", resp.StatusCode, body)
	}
}

func TestClientGoneMidResponseReleasesTheApp(t *testing.T) {
	b := setup(t, setupOptions{})
	writeFailed := make(chan struct{})
	var once sync.Once
	app := newBackend(t, "big", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "small")
			return
		}
		chunk := []byte(strings.Repeat("y", 64<<10))
		for range 10000 { // 640 MB: far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				once.Do(func() { close(writeFailed) })
				return
			}
		}
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"big.test"}, Upstream: app.addr}}})
	c := dialRaw(t, b.httpAddr)
	c.write("GET /big HTTP/1.1\r\nHost: big.test\r\n\r\n")
	if _, err := c.br.Peek(100); err != nil {
		t.Fatal(err)
	}
	c.nc.Close()
	select {
	case <-writeFailed:
	case <-time.After(15 * time.Second):
		t.Fatal("the app kept writing after the client left: the edge did not close its side")
	}
	if resp, body := get(t, b.http, "http://big.test/small"); resp.StatusCode != 200 || body != "small" {
		t.Fatalf("after a client left: %d %q", resp.StatusCode, body)
	}
}

func TestSlowReaderGetsTheWholeLargeResponse(t *testing.T) {
	b := setup(t, setupOptions{})
	want := strings.Repeat("0123456789abcdef", 256<<10) // 4 MiB
	app := newBackend(t, "large", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, want[:len(want)/2])
			w.(http.Flusher).Flush()
			io.WriteString(w, want[len(want)/2:])
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(want)))
		io.WriteString(w, want)
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"large.test"}, Upstream: app.addr}}})
	c := dialRaw(t, b.httpAddr)
	for _, path := range []string{"/", "/chunked", "/"} {
		c.write("GET " + path + " HTTP/1.1\r\nHost: large.test\r\n\r\n")
		time.Sleep(50 * time.Millisecond) // let the edge fill the socket and wait for room
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("%s: %d, %d bytes (want %d)", path, resp.StatusCode, len(body), len(want))
		}
	}
}

func TestIdleAndHeaderTimeoutsCloseClientConnections(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", nil)
	b.apply(t, Config{
		Routes: []Route{{Hosts: []string{"idle.test"}, Upstream: app.addr}},
		Limits: Limits{IdleTimeout: Duration(300 * time.Millisecond), ReadHeaderTimeout: Duration(300 * time.Millisecond)},
	})
	idle := dialRaw(t, b.httpAddr)
	idle.write("GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n")
	if resp, _ := idle.read("GET"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	start := time.Now()
	if !idle.closedByEdge(5 * time.Second) {
		t.Fatal("an idle connection stayed open past IdleTimeout")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %s, before IdleTimeout", d)
	}

	partial := dialRaw(t, b.httpAddr)
	partial.write("GET / HTTP/1.1\r\nHost: idle.test\r\n")
	if !partial.closedByEdge(5 * time.Second) {
		t.Fatal("a connection with half a head stayed open past ReadHeaderTimeout")
	}
}

// TestShutdownFinishesRequestsInFlight: when Serve's context ends, an idle connection
// closes at once, a request in flight gets its response and then the connection closes,
// and Serve returns.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	s, err := New(Options{Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	if err := s.Apply(Config{Routes: []Route{{Hosts: []string{"drain.test"}, Upstream: app.addr}}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()

	idle := dialRaw(t, ln.Addr().String())
	idle.write("GET / HTTP/1.1\r\nHost: drain.test\r\n\r\n")
	if resp, body := idle.read("GET"); resp.StatusCode != 200 || body != "done" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	busy := dialRaw(t, ln.Addr().String())
	busy.write("GET /slow HTTP/1.1\r\nHost: drain.test\r\n\r\n")
	<-entered

	cancel()
	if !idle.closedByEdge(5 * time.Second) {
		t.Fatal("an idle connection stayed open during the drain")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts connections during the drain")
	}
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("request in flight: %d %q", resp.StatusCode, body)
	}
	if !busy.closedByEdge(5 * time.Second) {
		t.Fatal("the connection stayed open after its last response during the drain")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
}

// oneShotApp is an app that reads one request on each connection, writes the parts of its
// response (each its own write), and closes the connection without saying so. It returns
// its address.
func oneShotApp(t *testing.T, parts ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
					return
				}
				for _, p := range parts {
					io.WriteString(nc, p)
				}
			}()
		}
	}()
	return ln.Addr().String()
}
