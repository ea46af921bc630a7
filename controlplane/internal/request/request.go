// Package request carries per-request facts (id, client address, user agent) from the HTTP
// middleware to the handlers, the logs and the activity log.
package request

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
)

// Info is what the control plane knows about the request being served.
type Info struct {
	// ID identifies the request in logs; it is echoed in the X-Request-Id response header.
	ID string
	// IP is the client address: the peer's, or the first X-Forwarded-For hop when the server
	// is told to trust proxy headers.
	IP        string
	UserAgent string
}

type ctxKey struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the request info in ctx (zero outside a request).
func From(ctx context.Context) Info {
	info, _ := ctx.Value(ctxKey{}).(Info)
	return info
}

// Middleware fills Info for every request. With trustProxy, the client address comes from
// X-Forwarded-For; only turn that on behind a proxy that sets it, or clients can pick their
// address (and dodge per-address login limits).
func Middleware(next http.Handler, trustProxy bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			id = newID()
		}
		w.Header().Set("X-Request-Id", id)
		info := Info{ID: id, IP: clientIP(r, trustProxy), UserAgent: truncate(r.UserAgent(), 512)}
		next.ServeHTTP(w, r.WithContext(With(r.Context(), info)))
	})
}

func clientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
			first, _, _ := strings.Cut(fwd, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
