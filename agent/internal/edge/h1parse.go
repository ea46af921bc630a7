package edge

import (
	"bytes"
	"errors"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// The event loop (loop_linux.go) reads HTTP/1.1 heads from its own buffers instead of
// through http.ReadRequest and http.ReadResponse. Its parsers are deliberately narrow:
// a request head they do not fully understand is not refused but handed, bytes and all,
// to the goroutine path (serveH1), whose net/http parser then answers exactly as it
// always has. So the fast path only has to be right about what it accepts.

// fastRequest is a request head the event loop serves itself: HTTP/1.1, origin-form
// target, a valid Host, no body, no upgrade or expectation.
type fastRequest struct {
	headLen    int    // bytes of the head, blank line included
	method     []byte // method, target and host point into the client's buffer
	target     []byte
	host       []byte // the Host header as sent (trimmed), port included
	close      bool   // Connection: close
	replayable bool   // idempotent (or an Idempotency-Key): safe to send twice
	head       bool   // HEAD: the response has no body
}

// Results of parseRequest besides a request.
const (
	parsedRequest = iota
	needMore      // the head is not complete yet
	handOff       // not a request the loop serves: give it to the goroutine path
)

// parseRequest parses the request head at the start of p and appends the head to send
// upstream (request line, end-to-end headers, but not X-Forwarded-* or the final blank
// line) to dst. The header names sent upstream are canonicalized, as net/http does.
func parseRequest(p, dst []byte) (fastRequest, []byte, int) {
	var r fastRequest
	end := bytes.Index(p, crlfcrlf)
	if end < 0 {
		// A bare LF ends lines for net/http too; such heads go the slow way.
		for i := bytes.IndexByte(p, '\n'); i >= 0; {
			if i == 0 || p[i-1] != '\r' {
				return r, dst, handOff
			}
			j := bytes.IndexByte(p[i+1:], '\n')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		return r, dst, needMore
	}
	r.headLen = end + 4
	head := p[:end+2] // every line with its CRLF

	line, rest, ok := cutLine(head)
	if !ok {
		return r, dst, handOff
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return r, dst, handOff
	}
	method, target := line[:sp], line[sp+1:]
	sp = bytes.IndexByte(target, ' ')
	if sp <= 0 || string(target[sp+1:]) != "HTTP/1.1" {
		return r, dst, handOff
	}
	target = target[:sp]
	if !validToken(method) || string(method) == "CONNECT" || !plainTarget(target) {
		return r, dst, handOff
	}
	r.method, r.target = method, target
	r.head = string(method) == "HEAD"
	r.replayable = idempotentMethod(string(method))
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\n"...)

	var sawLength bool
	for len(rest) > 0 {
		line, rest, ok = cutLine(rest)
		if !ok || line[0] == ' ' || line[0] == '\t' {
			return r, dst, handOff // obsolete line folding, or a stray CR
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validToken(line[:colon]) {
			return r, dst, handOff
		}
		value := trimSpace(line[colon+1:])
		if !validValue(value) {
			return r, dst, handOff
		}
		mark := len(dst)
		dst = appendCanonical(dst, line[:colon])
		name := dst[mark:]
		switch string(name) {
		case "Host":
			if r.host != nil {
				return r, dst, handOff
			}
			r.host = value
		case "Content-Length":
			if sawLength || string(value) != "0" {
				return r, dst, handOff
			}
			sawLength = true
			dst = dst[:mark]
			continue
		case "Connection":
			for v := value; len(v) > 0; {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte{','})
				tok = trimSpace(tok)
				switch {
				case len(tok) == 0 || asciiEqualFold(tok, "keep-alive"):
				case asciiEqualFold(tok, "close"):
					r.close = true
				default:
					return r, dst, handOff // an upgrade, or headers named hop-by-hop
				}
			}
			dst = dst[:mark]
			continue
		case "Transfer-Encoding", "Expect", "Upgrade", "Te":
			return r, dst, handOff
		case "Idempotency-Key":
			r.replayable = true
		default:
			if skipRequestHeader(string(name)) { // hop-by-hop, or set by the edge itself
				dst = dst[:mark]
				continue
			}
		}
		dst = append(dst, ": "...)
		dst = append(dst, value...)
		dst = append(dst, "\r\n"...)
	}
	if len(r.host) == 0 || !httpguts.ValidHostHeader(string(r.host)) {
		return r, dst, handOff
	}
	return r, dst, parsedRequest
}

// cutLine splits off the first CRLF-terminated line of p; ok is false when the line
// holds a CR other than its last or p has no CRLF.
func cutLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 1 || p[i-1] != '\r' {
		return nil, nil, false
	}
	line = p[:i-1]
	if len(line) == 0 || bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, p[i+1:], true
}

// plainTarget accepts an origin-form request target that net/http parses without
// complaint and passes on unchanged: printable ASCII, no fragment, well-formed escapes.
func plainTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == '#':
			return false
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue matches httpguts.ValidHeaderFieldValue: no control bytes but tab.
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// appendCanonical appends the canonical form of a valid header name (as
// textproto.CanonicalMIMEHeaderKey makes it).
func appendCanonical(dst, name []byte) []byte {
	upper := true
	for _, c := range name {
		switch {
		case upper && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case !upper && c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// upstreamResponse is a parsed response head from an app.
type upstreamResponse struct {
	headLen int
	code    int
	// Framing of the body as the app sent it.
	contentLength int64 // -1: not given
	chunked       bool
	close         bool // the app closes the connection after this response
}

var (
	errResponseHead  = errors.New("malformed response head")
	errResponseFrame = errors.New("conflicting or unsupported response framing")
)

// parseResponseHead parses the response head at the start of p. It returns needMore
// (as n == 0, err nil) when the head is incomplete. Lines may end in CRLF or LF, as
// net/http accepts.
func parseResponseHead(p []byte) (resp upstreamResponse, n int, err error) {
	resp.contentLength = -1
	line, rest, ok := cutAnyLine(p)
	if !ok {
		return resp, 0, nil
	}
	proto, status, found := bytes.Cut(line, []byte{' '})
	if !found {
		return resp, 0, errResponseHead
	}
	status = bytes.TrimLeft(status, " ")
	code, _, _ := bytes.Cut(status, []byte{' '})
	if len(code) != 3 {
		return resp, 0, errResponseHead
	}
	c, err := strconv.Atoi(string(code))
	if err != nil || c < 0 {
		return resp, 0, errResponseHead
	}
	resp.code = c
	major, minor, ok := parseHTTPVersion(proto)
	if !ok {
		return resp, 0, errResponseHead
	}
	var (
		keepAlive, closeTok bool
		lengths, encodings  int
		length              []byte
	)
	for {
		line, rest, ok = cutAnyLine(rest)
		if !ok {
			return resp, 0, nil
		}
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte{':'})
		if !found || !validToken(name) {
			return resp, 0, errResponseHead
		}
		value = trimSpace(value)
		if !validValue(value) {
			return resp, 0, errResponseHead
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if lengths > 0 && !bytes.Equal(value, length) {
				return resp, 0, errResponseFrame
			}
			lengths++
			length = value
		case asciiEqualFold(name, "Transfer-Encoding"):
			encodings++
			if encodings > 1 || !asciiEqualFold(value, "chunked") {
				if major == 1 && minor == 0 {
					continue // ignored in HTTP/1.0, as net/http does
				}
				return resp, 0, errResponseFrame
			}
			resp.chunked = major > 1 || minor > 0
		case asciiEqualFold(name, "Connection"):
			for v := value; len(v) > 0; {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte{','})
				tok = trimSpace(tok)
				closeTok = closeTok || asciiEqualFold(tok, "close")
				keepAlive = keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
	resp.headLen = len(p) - len(rest)
	if lengths > 0 && !resp.chunked {
		n, err := strconv.ParseUint(string(length), 10, 63)
		if err != nil {
			return resp, 0, errResponseFrame
		}
		resp.contentLength = int64(n)
	}
	resp.close = major < 1 || closeTok || major == 1 && minor == 0 && !keepAlive
	return resp, resp.headLen, nil
}

// cutAnyLine splits off the first line of p, ending in LF or CRLF.
func cutAnyLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line = p[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, p[i+1:], true
}

func parseHTTPVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != len("HTTP/X.Y") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// bodyAllowed reports whether a response with this status may have a body.
func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == 204 || code == 304)
}

// appendClientHead appends the head the client gets for resp (whose raw head is
// head): status, end-to-end headers, framing for this client and the Connection header,
// as h1conn.writeResponse writes them. It reports whether the client's body is
// re-framed as chunked and whether there is a body at all.
func appendClientHead(dst, head []byte, resp *upstreamResponse, headRequest, keepAlive bool) (out []byte, chunked, noBody bool, err error) {
	line, rest, _ := cutAnyLine(head)
	_, status, _ := bytes.Cut(line, []byte{' '})
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, bytes.TrimLeft(status, " ")...)
	dst = append(dst, "\r\n"...)

	// Headers the app named in Connection are hop-by-hop too.
	var named [][]byte
	for r := rest; ; {
		line, r, _ = cutAnyLine(r)
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		if asciiEqualFold(name, "Connection") {
			for v := trimSpace(value); len(v) > 0; {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte{','})
				tok = trimSpace(tok)
				if len(tok) > 0 && !asciiEqualFold(tok, "keep-alive") && !asciiEqualFold(tok, "close") && !asciiEqualFold(tok, "upgrade") {
					named = append(named, tok)
				}
			}
		}
	}
	noBody = !bodyAllowed(resp.code) || headRequest || !resp.chunked && resp.contentLength == 0
	var length []byte
	var lengths int
	var declared []byte // "Trailer: K\r\n" lines
	for {
		line, rest, _ = cutAnyLine(rest)
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		value = trimSpace(value)
		mark := len(dst)
		dst = appendCanonical(dst, name)
		canon := dst[mark:]
		switch string(canon) {
		case "Content-Length":
			if lengths == 0 || !bytes.Equal(value, length) {
				lengths++
			}
			length = value
			dst = dst[:mark]
			continue
		case "Trailer":
			if resp.chunked {
				for v := value; len(v) > 0; {
					var tok []byte
					tok, v, _ = bytes.Cut(v, []byte{','})
					tok = trimSpace(tok)
					if len(tok) == 0 {
						continue
					}
					k := len(declared)
					declared = append(declared, "Trailer: "...)
					declared = appendCanonical(declared, tok)
					switch string(declared[k+len("Trailer: "):]) {
					case "Transfer-Encoding", "Trailer", "Content-Length":
						return dst, false, false, errResponseFrame
					}
					if bytes.Contains(declared[:k], declared[k:]) {
						declared = declared[:k] // named twice: net/http keeps one
						continue
					}
					declared = append(declared, "\r\n"...)
				}
			}
			dst = dst[:mark]
			continue
		default:
			if skipResponseHeader(string(canon)) {
				dst = dst[:mark]
				continue
			}
		}
		skip := false
		for _, tok := range named {
			if len(tok) == len(canon) && asciiEqualFold(canon, string(tok)) {
				skip = true
				break
			}
		}
		if skip {
			dst = dst[:mark]
			continue
		}
		dst = append(dst, ": "...)
		dst = append(dst, value...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case noBody:
		if lengths == 1 {
			dst = append(dst, "Content-Length: "...)
			dst = append(dst, length...)
			dst = append(dst, "\r\n"...)
		}
	case resp.contentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, resp.contentLength, 10)
		dst = append(dst, "\r\n"...)
	default:
		chunked = true
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
		dst = append(dst, declared...)
	}
	if !keepAlive {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return dst, chunked, noBody, nil
}

// chunkDecoder reads an app's chunked body and re-frames it for the client: each piece
// of data becomes one chunk, chunk extensions are dropped, trailers are passed on with
// canonical names (what httputil's chunked reader and writer do on the goroutine path).
type chunkDecoder struct {
	phase    int   // chunkSize, chunkData, chunkDataEnd, chunkTrailer
	left     int64 // data bytes left in the current chunk
	trailers []byte
}

const (
	chunkSize = iota
	chunkData
	chunkDataEnd
	chunkTrailer
)

var errChunked = errors.New("malformed chunked encoding")

// maxChunkLine bounds a chunk-size line or a trailer line, as net/http's reader does.
const maxChunkLine = 4096

// chunkLine cuts a chunk-size or trailer line off p and returns it with the bytes it used;
// 0 bytes when the line is not complete yet, with errChunked when it is already too long.
func chunkLine(p []byte) (line []byte, used int, err error) {
	line, rest, ok := cutAnyLine(p)
	if !ok {
		if len(p) > maxChunkLine {
			return nil, 0, errChunked
		}
		return nil, 0, nil
	}
	return line, len(p) - len(rest), nil
}

// decode consumes as much of p as it can and appends the client's bytes to dst. It
// returns how many bytes of p it consumed and whether the body ended.
func (d *chunkDecoder) decode(dst, p []byte) (out []byte, n int, done bool, err error) {
	for n < len(p) {
		switch d.phase {
		case chunkSize:
			line, used, err := chunkLine(p[n:])
			if used == 0 {
				return dst, n, false, err
			}
			n += used
			line = trimSpace(line)
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				line = trimSpace(line[:i])
			}
			size, perr := strconv.ParseUint(string(line), 16, 63)
			if perr != nil || len(line) == 0 || len(line) > 16 {
				return dst, n, false, errChunked
			}
			if size == 0 {
				d.phase = chunkTrailer
				continue
			}
			d.left = int64(size)
			d.phase = chunkData
		case chunkData:
			k := min(int64(len(p)-n), d.left)
			dst = strconv.AppendUint(dst, uint64(k), 16)
			dst = append(dst, "\r\n"...)
			dst = append(dst, p[n:n+int(k)]...)
			dst = append(dst, "\r\n"...)
			n += int(k)
			d.left -= k
			if d.left == 0 {
				d.phase = chunkDataEnd
			}
		case chunkDataEnd:
			line, _, ok := cutAnyLine(p[n:])
			if !ok {
				if len(p)-n >= 2 {
					return dst, n, false, errChunked
				}
				return dst, n, false, nil
			}
			if len(line) != 0 {
				return dst, n, false, errChunked
			}
			n += bytes.IndexByte(p[n:], '\n') + 1
			d.phase = chunkSize
		case chunkTrailer:
			line, used, err := chunkLine(p[n:])
			if used == 0 {
				return dst, n, false, err
			}
			n += used
			if len(line) == 0 {
				dst = append(dst, "0\r\n"...)
				dst = append(dst, d.trailers...)
				dst = append(dst, "\r\n"...)
				return dst, n, true, nil
			}
			name, value, found := bytes.Cut(line, []byte{':'})
			if !found || !validToken(name) {
				return dst, n, false, errChunked
			}
			value = trimSpace(value)
			if !validValue(value) {
				return dst, n, false, errChunked
			}
			d.trailers = appendCanonical(d.trailers, name)
			d.trailers = append(d.trailers, ": "...)
			d.trailers = append(d.trailers, value...)
			d.trailers = append(d.trailers, "\r\n"...)
		}
	}
	return dst, n, false, nil
}

// reset readies the decoder for the next body.
func (d *chunkDecoder) reset() {
	d.phase, d.left, d.trailers = chunkSize, 0, d.trailers[:0]
}
