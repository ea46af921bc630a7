package edge

import (
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestParseRequestServesOnlyWhatItFullyUnderstands(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       int
		upstream   string // the head sent upstream, when served
	}{
		{"a plain GET", "GET /a?b=c HTTP/1.1\r\nHost: x.test\r\nuser-AGENT: t\r\n\r\n", parsedRequest,
			"GET /a?b=c HTTP/1.1\r\nHost: x.test\r\nUser-Agent: t\r\n"},
		{"hop-by-hop and forwarding headers are dropped", "GET / HTTP/1.1\r\nHost: x.test\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nContent-Length: 0\r\nX-Kept:  v \r\n\r\n", parsedRequest,
			"GET / HTTP/1.1\r\nHost: x.test\r\nX-Kept: v\r\n"},
		{"an incomplete head", "GET / HTTP/1.1\r\nHost: x.te", needMore, ""},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x.test\r\n\r\n", handOff, ""},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", handOff, ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", handOff, ""},
		{"a body", "POST / HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\n\r\nabc", handOff, ""},
		{"a chunked body", "POST / HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n", handOff, ""},
		{"an upgrade", "GET / HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", handOff, ""},
		{"an expectation", "GET / HTTP/1.1\r\nHost: x.test\r\nExpect: 100-continue\r\n\r\n", handOff, ""},
		{"a header named hop-by-hop", "GET / HTTP/1.1\r\nHost: x.test\r\nConnection: X-Secret\r\n\r\n", handOff, ""},
		{"an absolute target", "GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n", handOff, ""},
		{"a bad escape", "GET /%zz HTTP/1.1\r\nHost: x.test\r\n\r\n", handOff, ""},
		{"CONNECT", "CONNECT x.test:443 HTTP/1.1\r\nHost: x.test\r\n\r\n", handOff, ""},
		{"a control byte", "GET / HTTP/1.1\r\nHost: x.test\r\nX-Bad: a\x01b\r\n\r\n", handOff, ""},
		{"line folding", "GET / HTTP/1.1\r\nHost: x.test\r\nX-A: a\r\n b\r\n\r\n", handOff, ""},
		{"a bare LF", "GET / HTTP/1.1\nHost: x.test\n\n", handOff, ""},
		{"a space before the colon", "GET / HTTP/1.1\r\nHost : x.test\r\n\r\n", handOff, ""},
		{"garbage", "HELLO\r\n\r\n", handOff, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, up, res := parseRequest([]byte(tc.head), nil)
			if res != tc.want {
				t.Fatalf("result %d, want %d", res, tc.want)
			}
			if res == parsedRequest && string(up) != tc.upstream {
				t.Fatalf("upstream head %q, want %q", up, tc.upstream)
			}
			if res == parsedRequest && r.headLen != strings.Index(tc.head, "\r\n\r\n")+4 {
				t.Fatalf("head length %d", r.headLen)
			}
		})
	}
}

func TestParseRequestFlags(t *testing.T) {
	for _, tc := range []struct {
		head                   string
		close, replayable, hed bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, true, false},
		{"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true, true, true},
		{"POST / HTTP/1.1\r\nHost: a\r\n\r\n", false, false, false},
		{"POST / HTTP/1.1\r\nHost: a\r\nIdempotency-Key: k\r\n\r\n", false, true, false},
	} {
		r, _, res := parseRequest([]byte(tc.head), nil)
		if res != parsedRequest || r.close != tc.close || r.replayable != tc.replayable || r.head != tc.hed {
			t.Errorf("%q: %d %+v", tc.head, res, r)
		}
	}
}

func TestClientHeadIsRewrittenLikeTheGoroutinePath(t *testing.T) {
	for _, tc := range []struct {
		name, head  string
		headRequest bool
		keepAlive   bool
		want        string
		chunked     bool
	}{
		{"a length", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\nKeep-Alive: x\r\n\r\n", false, true,
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n", false},
		{"chunked with trailers, closing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n", false, false,
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n", true},
		{"until the close, from HTTP/1.0", "HTTP/1.0 200 OK\r\nX-A: b\r\n\r\n", false, true,
			"HTTP/1.1 200 OK\r\nX-A: b\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"HEAD keeps the length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, true,
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false},
		{"a status without a reason", "HTTP/1.1 204\r\n\r\n", false, true, "HTTP/1.1 204\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, n, err := parseResponseHead([]byte(tc.head))
			if err != nil || n != len(tc.head) {
				t.Fatalf("parse: %d %v", n, err)
			}
			out, chunked, _, err := appendClientHead(nil, []byte(tc.head), &resp, tc.headRequest, tc.keepAlive)
			if err != nil || string(out) != tc.want || chunked != tc.chunked {
				t.Fatalf("got %q chunked=%v %v\nwant %q chunked=%v", out, chunked, err, tc.want, tc.chunked)
			}
		})
	}
	for _, bad := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	} {
		if _, _, err := parseResponseHead([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestChunkDecoderReframesBodiesArrivingByteByByte(t *testing.T) {
	in := "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 42\r\n\r\n"
	var d chunkDecoder
	var out, buf []byte
	done := false
	for i := 0; i < len(in) && !done; i++ {
		buf = append(buf, in[i])
		var n int
		var err error
		out, n, done, err = d.decode(out, buf)
		if err != nil {
			t.Fatalf("at byte %d: %v", i, err)
		}
		buf = buf[n:]
	}
	body, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(out)))
	if !done || err != nil || string(body) != "hello world" || !strings.HasSuffix(string(out), "0\r\nX-Sum: 42\r\n\r\n") {
		t.Fatalf("done=%v body=%q (%v) out=%q", done, body, err, out)
	}
	if _, _, _, err := new(chunkDecoder).decode(nil, []byte("zz\r\n")); err == nil {
		t.Fatal("a bad chunk size was accepted")
	}
}
