package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestRoutesByHostCaseInsensitivelyWithWildcards(t *testing.T) {
	b := setup(t, setupOptions{})
	a := newBackend(t, "app-a", nil)
	w := newBackend(t, "app-wild", nil)
	x := newBackend(t, "app-exact", nil)
	b.apply(t, Config{Routes: []Route{
		{Hosts: []string{"a.example.test", "WWW.A.Example.Test"}, Upstream: a.addr},
		{Hosts: []string{"*.apps.example.test"}, Upstream: w.addr},
		{Hosts: []string{"special.apps.example.test"}, Upstream: x.addr},
	}})
	for _, tc := range []struct {
		host, want string
		code       int
	}{
		{"a.example.test", "app-a", 200},
		{"A.EXAMPLE.TEST", "app-a", 200},
		{"a.example.test:8080", "app-a", 200},
		{"www.a.example.test", "app-a", 200},
		{"one.apps.example.test", "app-wild", 200},
		{"Two.Apps.Example.Test:80", "app-wild", 200},
		{"special.apps.example.test", "app-exact", 200},
		{"deep.one.apps.example.test", "", 404},
		{"apps.example.test", "", 404},
		{"unknown.test", "", 404},
	} {
		t.Run(tc.host, func(t *testing.T) {
			resp, body := get(t, b.http, "http://"+tc.host+"/")
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if tc.code == 200 && body != tc.want {
				t.Fatalf("body %q, want %q", body, tc.want)
			}
			if tc.code == 404 && (strings.Contains(body, "127.0.0.1") || !strings.Contains(body, "no app")) {
				t.Fatalf("404 page %q: want the edge's page naming nothing internal", body)
			}
		})
	}
}

func TestSuspendedAppGetsTheSuspendedPage(t *testing.T) {
	b := setup(t, setupOptions{})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"sleepy.test"}, Suspended: true}}})
	resp, body := get(t, b.http, "http://sleepy.test/anything")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "suspended") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestHTTPSRedirectNeedsACertificateAndSparesACMEChallenges(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", nil)
	b.apply(t, Config{
		Routes: []Route{
			{Hosts: []string{"secure.test"}, Upstream: app.addr, HTTPSRedirect: true},
			{Hosts: []string{"nocert.test"}, Upstream: app.addr, HTTPSRedirect: true},
		},
		Certificates: []Certificate{b.ca.issue(t, "secure.test")},
		Challenges:   []Challenge{{Token: "tok123", KeyAuthorization: "tok123.thumbprint"}},
	})
	_, port, _ := net.SplitHostPort(b.httpsAddr)

	resp, _ := get(t, b.http, "http://Secure.test/path/x?q=1&r=2")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://secure.test:"+port+"/path/x?q=1&r=2" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := get(t, b.http, "http://nocert.test/"); resp.StatusCode != 200 || body != "app" {
		t.Fatalf("without a certificate the app should answer over http: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, b.https, "https://secure.test/"); resp.StatusCode != 200 || body != "app" {
		t.Fatalf("over https: %d %q", resp.StatusCode, body)
	}
	for _, host := range []string{"secure.test", "unknown.test"} {
		resp, body := get(t, b.http, "http://"+host+"/.well-known/acme-challenge/tok123")
		if resp.StatusCode != 200 || body != "tok123.thumbprint" {
			t.Fatalf("challenge on %s: %d %q", host, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, b.http, "http://unknown.test/.well-known/acme-challenge/other"); resp.StatusCode != 404 {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
}

func TestSNIPicksTheCertificateAndUnknownNamesGetTheFallback(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", nil)
	b.apply(t, Config{
		Routes: []Route{{Hosts: []string{"one.test", "*.two.test"}, Upstream: app.addr}},
		Certificates: []Certificate{
			b.ca.issue(t, "one.test"),
			b.ca.issue(t, "*.two.test"),
		},
	})
	for _, name := range []string{"one.test", "x.two.test", "ONE.test"} {
		conn, err := tls.Dial("tcp", b.httpsAddr, &tls.Config{ServerName: name, RootCAs: b.ca.pool})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].DNSNames
		conn.Close()
		if want := strings.ToLower(name); !(got[0] == want || got[0] == "*.two.test" && strings.HasSuffix(want, ".two.test")) {
			t.Fatalf("%s got a certificate for %v", name, got)
		}
	}
	conn, err := tls.Dial("tcp", b.httpsAddr, &tls.Config{ServerName: "stranger.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("unknown SNI: the handshake should complete with the fallback: %v", err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "SkyPanel edge" {
		t.Fatalf("fallback certificate %q", cn)
	}
	conn.Close()

	for name, c := range map[string]*http.Client{"http/1.1": b.https, "h2": b.h2} {
		resp, body := get(t, c, "https://x.two.test/")
		if resp.StatusCode != 200 || body != "app" {
			t.Fatalf("%s: %d %q", name, resp.StatusCode, body)
		}
		if name == "h2" && resp.ProtoMajor != 2 {
			t.Fatalf("h2 client spoke %s", resp.Proto)
		}
		if got := app.lastRequest().Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Fatalf("%s: X-Forwarded-Proto %q", name, got)
		}
	}
}

func TestForwardedHeadersAreSetByTheEdgeNotTheClient(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", nil)
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"fwd.test"}, Upstream: app.addr}}})
	resp, _ := get(t, b.http, "http://fwd.test:8080/p",
		"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test",
		"Forwarded", "for=6.6.6.6", "X-Real-IP", "6.6.6.6",
		"Connection", "X-Secret", "X-Secret", "hop", "X-Kept", "end-to-end")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	h := app.lastRequest().Header
	host := app.lastRequest().Host
	for k, want := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "fwd.test:8080",
		"Forwarded": "", "X-Real-Ip": "", "X-Secret": "", "X-Kept": "end-to-end",
	} {
		if got := strings.Join(h.Values(k), ","); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if host != "fwd.test:8080" {
		t.Errorf("Host %q: the client's Host passes through", host)
	}
}

func TestWebSocketEchoThroughTheEdge(t *testing.T) {
	b := setup(t, setupOptions{})
	ws := &http.Server{Handler: websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ws.Serve(ln)
	t.Cleanup(func() { ws.Close() })
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"ws.test"}, Upstream: ln.Addr().String()}}})

	cfg, err := websocket.NewConfig("ws://ws.test/echo", "http://ws.test/")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", b.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := websocket.NewClient(cfg, raw)
	if err != nil {
		t.Fatalf("upgrade through the edge: %v", err)
	}
	defer conn.Close()
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := websocket.Message.Send(conn, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.Message.Receive(conn, &got); err != nil || got != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
}

func TestStreamingResponsesAreFlushedAtOnce(t *testing.T) {
	b := setup(t, setupOptions{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	app := newBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: second\n\n")
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"sse.test"}, Upstream: app.addr}}})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"sse.test"}, Upstream: app.addr}},
		Certificates: []Certificate{b.ca.issue(t, "sse.test")}})

	for name, tc := range map[string]struct {
		c   *http.Client
		url string
	}{"http/1.1": {b.http, "http://sse.test/"}, "h2": {b.h2, "https://sse.test/"}} {
		t.Run(name, func(t *testing.T) {
			resp, err := tc.c.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("first event %q, %v (it must arrive while the app still holds the response)", line, err)
			}
		})
	}
	once.Do(func() { close(release) })
}

func TestBodyLimitAnswers413(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(body))
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"up.test"}, Upstream: app.addr}}, Limits: Limits{MaxBodyBytes: 1000}})
	post := func(body io.Reader) (int, string) {
		resp, err := b.http.Post("http://up.test/", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	if code, body := post(strings.NewReader(strings.Repeat("a", 1000))); code != 200 || body != "got 1000" {
		t.Fatalf("at the limit: %d %q", code, body)
	}
	if code, _ := post(strings.NewReader(strings.Repeat("a", 1001))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared length over the limit: %d", code)
	}
	// Unknown length: the client sends it chunked.
	if code, body := post(io.MultiReader(strings.NewReader(strings.Repeat("b", 500)))); code != 200 || body != "got 500" {
		t.Fatalf("small chunked body: %d %q", code, body)
	}
	if code, _ := post(io.MultiReader(strings.NewReader(strings.Repeat("b", 5000)))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: %d", code)
	}
}

func TestSlowAppGets504AndMissingAppGets502(t *testing.T) {
	b := setup(t, setupOptions{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	})
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close()
	b.apply(t, Config{
		Routes: []Route{
			{Hosts: []string{"slow.test"}, Upstream: slow.addr},
			{Hosts: []string{"gone.test"}, Upstream: goneAddr},
		},
		Certificates: []Certificate{b.ca.issue(t, "gone.test")},
		Limits:       Limits{UpstreamTimeout: Duration(200 * time.Millisecond)},
	})
	start := time.Now()
	resp, body := get(t, b.http, "http://slow.test/")
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 5*time.Second {
		t.Fatalf("slow app: %d after %s", resp.StatusCode, time.Since(start))
	}
	resp, body = get(t, b.http, "http://gone.test/")
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(body, goneAddr) || strings.Contains(body, "refused") {
		t.Fatalf("missing app: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, b.h2, "https://gone.test/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("missing app over h2: %d", resp.StatusCode)
	}
}

func TestDeadAddressIsRetriedAndSkipped(t *testing.T) {
	// One task address answers, the other refuses connections.
	live := newBackendOn(t, "live", "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(live.addr)
	b := setup(t, setupOptions{resolve: staticResolver("127.0.0.1", "127.0.0.2")})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"app.test"}, Upstream: "app.internal:" + port}}})
	for i := 0; i < 50; i++ {
		resp, body := get(t, b.http, "http://app.test/")
		if resp.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// A POST is retried too when no connection could be made: nothing reached the app.
	for _, bk := range *b.s.table.Load().upstreams["app.internal:"+port].backends.Load() {
		bk.badUntil.Store(0) // forget what the GETs learnt
	}
	for i := 0; i < 10; i++ {
		resp, err := b.http.Post("http://app.test/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "live" {
			t.Fatalf("POST %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestScaledToZeroServiceGets502(t *testing.T) {
	b := setup(t, setupOptions{resolve: staticResolver()})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"zero.test"}, Upstream: "app.internal:8080"}}})
	if resp, _ := get(t, b.http, "http://zero.test/"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestRollingUpdateLosesNoRequests stops one of two task addresses gracefully (as a
// task does on SIGTERM during a rolling update) while clients keep sending idempotent
// requests; every request must succeed. (A POST can fail here: Go's http.Server drops a
// request it reads after Shutdown began without answering, and the edge cannot tell
// that from an app that crashed while handling it, so it does not send it twice.)
func TestRollingUpdateLosesNoRequests(t *testing.T) {
	first := newBackendOn(t, "one", "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(first.addr)
	second := newBackendOn(t, "two", "127.0.0.2:"+port, nil)
	b := setup(t, setupOptions{resolve: staticResolver("127.0.0.1", "127.0.0.2")})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"roll.test"}, Upstream: "app.internal:" + port}}})

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var resp *http.Response
				var err error
				method := http.MethodGet
				if w%2 == 1 {
					method = http.MethodDelete
				}
				req, _ := http.NewRequest(method, "http://roll.test/", nil)
				resp, err = b.http.Do(req)
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr == nil && resp.StatusCode == 200 && (string(body) == "one" || string(body) == "two") {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("%s: status %d body %.40q read error %v", resp.Request.Method, resp.StatusCode, body, rerr)
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	eventually(t, "both addresses serve", func() bool { return first.count() > 50 && second.count() > 50 })
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := second.srv.Shutdown(sctx); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	scancel()
	after := first.count()
	eventually(t, "the remaining address serves on", func() bool { return first.count() > after+500 })
	cancel()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the update; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, none failed", ok.Load())
}

func TestConfigFileIsReloadedOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ConfigFile)
	one := newBackend(t, "one", nil)
	two := newBackend(t, "two", nil)
	b := setup(t, setupOptions{configPath: path})

	if resp, _ := get(t, b.http, "http://reload.test/"); resp.StatusCode != 404 {
		t.Fatalf("before any config: %d", resp.StatusCode)
	}
	if err := WriteConfig(dir, Config{Routes: []Route{{Hosts: []string{"reload.test"}, Upstream: one.addr}}}); err != nil {
		t.Fatal(err)
	}
	answers := func(want string) func() bool {
		return func() bool {
			resp, body := get(t, b.http, "http://reload.test/")
			return resp.StatusCode == 200 && body == want
		}
	}
	eventually(t, "the first config applies", answers("one"))
	if err := WriteConfig(dir, Config{Routes: []Route{{Hosts: []string{"reload.test"}, Upstream: two.addr}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second config applies", answers("two"))

	// A broken file is refused; the configuration in force stays.
	if err := os.WriteFile(path, []byte(`{"routes": [{"hosts": ["reload.test"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several poll intervals: nothing may change
	if !answers("two")() {
		t.Fatal("a broken config file replaced the working one")
	}
	if err := WriteConfig(dir, Config{Routes: []Route{{Hosts: []string{"*.test"}, Suspended: true}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the third config applies", func() bool {
		resp, _ := get(t, b.http, "http://reload.test/")
		return resp.StatusCode == http.StatusServiceUnavailable
	})
}

func TestHeadAndChunkedResponsesAndKeepAlive(t *testing.T) {
	b := setup(t, setupOptions{})
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		if r.URL.Path == "/chunked" {
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		io.WriteString(w, "hello")
	})
	b.apply(t, Config{Routes: []Route{{Hosts: []string{"h.test"}, Upstream: app.addr}}})

	conn, err := net.Dial("tcp", b.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range []struct{ method, path, want string }{
		{"HEAD", "/", ""}, {"GET", "/chunked", "part0;part1;part2;"}, {"GET", "/", "hello"},
	} {
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: h.test\r\n\r\n", tc.method, tc.path)
		req, _ := http.NewRequest(tc.method, "http://h.test"+tc.path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s on the same connection: %v", tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != tc.want || resp.Header.Get("X-App") != "yes" {
			t.Fatalf("%s %s: %q %v %v", tc.method, tc.path, body, err, resp.Header)
		}
		if tc.method == "HEAD" && resp.ContentLength != 5 {
			t.Fatalf("HEAD lost the Content-Length: %d", resp.ContentLength)
		}
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	b := setup(t, setupOptions{})
	for name, raw := range map[string]string{
		"no host":         "GET / HTTP/1.1\r\n\r\n",
		"garbage":         "HELLO\r\n\r\n",
		"huge header":     "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
		"bad header byte": "GET / HTTP/1.1\r\nHost: a.test\r\nX-Bad: a\x01b\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", b.httpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(conn, raw)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	ca := newTestCA(t)
	good := ca.issue(t, "a.test")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // part of the error; empty: valid
	}{
		{"a valid config", Config{Routes: []Route{{Hosts: []string{"a.test", "*.b.test"}, Upstream: "svc:8080"}}, Certificates: []Certificate{good}}, ""},
		{"a suspended route needs no upstream", Config{Routes: []Route{{Hosts: []string{"a.test"}, Suspended: true}}}, ""},
		{"a route needs hosts", Config{Routes: []Route{{Upstream: "svc:80"}}}, "at least one host"},
		{"a wildcard only as the first label", Config{Routes: []Route{{Hosts: []string{"a.*.test"}, Upstream: "svc:80"}}}, "not allowed"},
		{"no port in a host", Config{Routes: []Route{{Hosts: []string{"a.test:80"}, Upstream: "svc:80"}}}, "not allowed"},
		{"no host routed twice", Config{Routes: []Route{{Hosts: []string{"a.test"}, Upstream: "x:1"}, {Hosts: []string{"A.test"}, Upstream: "y:1"}}}, "already routed"},
		{"an upstream is required", Config{Routes: []Route{{Hosts: []string{"a.test"}}}}, "required unless"},
		{"the upstream port is a number", Config{Routes: []Route{{Hosts: []string{"a.test"}, Upstream: "svc:http"}}}, "port"},
		{"certificates parse", Config{Certificates: []Certificate{{Hosts: []string{"a.test"}, CertPEM: "x", KeyPEM: "y"}}}, "certificates[0]"},
		{"challenge tokens have no slash", Config{Challenges: []Challenge{{Token: "a/b", KeyAuthorization: "k"}}}, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Routes: []Route{{Hosts: []string{"a.test"}, Upstream: "svc:8080", HTTPSRedirect: true}},
		Limits: Limits{MaxBodyBytes: 1 << 20, UpstreamTimeout: Duration(30 * time.Second)},
	}
	if err := WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"upstream_timeout": "30s"`) {
		t.Fatalf("durations are written as strings: %s", raw)
	}
	if fi, _ := os.Stat(filepath.Join(dir, ConfigFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file holds private keys; mode %v", fi.Mode())
	}
	got, err := ReadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.Limits != cfg.Limits || got.Routes[0].Upstream != "svc:8080" || !got.Routes[0].HTTPSRedirect {
		t.Fatalf("read back %+v", got)
	}
	if err := WriteConfig(dir, Config{Routes: []Route{{}}}); err == nil {
		t.Fatal("an invalid config was written")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}
