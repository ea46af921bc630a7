package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/request"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/web"
)

// unaryDeadline bounds a whole unary RPC, reading and writing included.
const unaryDeadline = 30 * time.Second

// withDeadlines gives every request except server streams a read and write deadline, the
// per-request equivalent of http.Server's Read/WriteTimeout.
func withDeadlines(next http.Handler) http.Handler {
	streaming := streamingProcedures()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !streaming[r.URL.Path] {
			rc := http.NewResponseController(w)
			deadline := time.Now().Add(unaryDeadline)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline)
		}
		next.ServeHTTP(w, r)
	})
}

// streamingProcedures lists every server-streaming RPC of the skypanel schema, from the
// generated descriptors, so a new stream is never cut by the unary deadline.
func streamingProcedures() map[string]bool {
	out := map[string]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "skypanel.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := svc.Methods().Get(j)
				if m.IsStreamingServer() || m.IsStreamingClient() {
					out["/"+string(svc.FullName())+"/"+string(m.Name())] = true
				}
			}
		}
		return true
	})
	return out
}

// rpcMetrics counts RPCs by procedure and code, and times them.
type rpcMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_rpc_requests_total", Help: "RPCs served, by procedure and result code.",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "skypanel_rpc_duration_seconds", Help: "Time to serve a unary RPC.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"procedure"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *rpcMetrics) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		proc := req.Spec().Procedure
		m.duration.WithLabelValues(proc).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(proc, codeOf(err)).Inc()
		return resp, err
	}
}

func (m *rpcMetrics) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (m *rpcMetrics) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		m.countStream(conn.Spec().Procedure, err)
		return err
	}
}

// countStream counts a stream that ended. A function of its own, like errorLogger.streamEnded:
// see nodes.Manager.open for why a stream's wrappers keep small frames.
//
//go:noinline
func (m *rpcMetrics) countStream(procedure string, err error) {
	m.requests.WithLabelValues(procedure, codeOf(err)).Inc()
}

func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// errorLogger logs every RPC (never its payload or headers, which carry secrets) and hides
// internal errors' causes from callers: they get the request id to report instead.
type errorLogger struct{ logger *slog.Logger }

func newErrorLogger(logger *slog.Logger) *errorLogger { return &errorLogger{logger: logger} }

// heartbeats are the RPCs every node makes every report interval. Their successes are logged
// at debug level: at info, a control plane of 10,000 nodes would write 1,000 lines a second
// (and spend a tenth of a core on it, measured in docs/benchmarks.md). Their failures are
// logged like any RPC's.
var heartbeats = map[string]bool{agentv1connect.AgentServiceReportProcedure: true}

func (l *errorLogger) log(ctx context.Context, procedure string, start time.Time, err error) error {
	level := slog.LevelInfo
	if err == nil && heartbeats[procedure] {
		if !l.logger.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		level = slog.LevelDebug
	}
	info := request.From(ctx)
	attrs := []any{"procedure", procedure, "code", codeOf(err), "duration_ms", time.Since(start).Milliseconds(),
		"request_id", info.ID, "client_ip", info.IP}
	if p := auth.PrincipalFrom(ctx); p != nil {
		attrs = append(attrs, "user_id", p.UserID.String())
	}
	code := connect.CodeOf(err)
	switch {
	case err == nil:
		l.logger.Log(ctx, level, "rpc", attrs...)
	case code == connect.CodeInternal || code == connect.CodeUnknown:
		l.logger.Error("rpc failed", append(attrs, "err", err.Error())...)
		return connect.NewError(code, fmt.Errorf("internal error; quote request id %s when reporting it", info.ID))
	case code == connect.CodeUnavailable:
		// Unavailable says "try again" (a restart, a database outage); its message is ours
		// and safe to show.
		l.logger.Warn("rpc unavailable", append(attrs, "err", err.Error())...)
	default:
		l.logger.Info("rpc", append(attrs, "err", err.Error())...)
	}
	return err
}

func (l *errorLogger) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		return resp, l.log(ctx, req.Spec().Procedure, start, err)
	}
}

func (l *errorLogger) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *errorLogger) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		return l.streamEnded(ctx, conn.Spec().Procedure, start, next(ctx, conn))
	}
}

// streamEnded logs a stream that ended. It is a function of its own so that the wrapper's
// frame, which stays on the stream goroutine's stack for the stream's life, holds little: see
// nodes.Manager.open.
//
//go:noinline
func (l *errorLogger) streamEnded(ctx context.Context, procedure string, start time.Time, err error) error {
	if errors.Is(err, context.Canceled) {
		err = nil // the caller hung up: the normal end of a stream
	}
	return l.log(ctx, procedure, start, err)
}

// dashboard serves the embedded web app: files by path, long-cached when their names are
// content-hashed (Vite's assets/), and index.html for every other path so client-side routes
// survive a reload. Text files go out gzipped to clients that accept it (compressed once, on
// first request: the files are embedded and never change).
func dashboard() http.Handler {
	files := web.Dist()
	index := "index.html"
	if _, err := fs.Stat(files, index); err != nil {
		index = "placeholder.html"
	}
	gz := &gzipCache{files: files}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p != "" && p != index {
			if st, err := fs.Stat(files, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				gz.serve(w, r, p)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		gz.serve(w, r, index)
	})
}

// gzipCache serves embedded files, gzipped when that is worth it and the client accepts it.
type gzipCache struct {
	files fs.FS
	mu    sync.Mutex
	gz    map[string][]byte
}

var compressible = map[string]bool{".html": true, ".js": true, ".css": true, ".svg": true, ".json": true, ".txt": true}

func (c *gzipCache) serve(w http.ResponseWriter, r *http.Request, name string) {
	body, err := fs.ReadFile(c.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ext := path.Ext(name)
	if ct := mime.TypeByExtension(ext); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if compressible[ext] && len(body) > 1024 {
		w.Header().Add("Vary", "Accept-Encoding")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			body = c.compressed(name, body)
		}
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

func (c *gzipCache) compressed(name string, body []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gz == nil {
		c.gz = map[string][]byte{}
	}
	if out, ok := c.gz[name]; ok {
		return out
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	c.gz[name] = buf.Bytes()
	return c.gz[name]
}
