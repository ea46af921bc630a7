package edge

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"
)

// table is one configuration compiled for lookups. It is immutable once built; the
// server swaps whole tables atomically on reload.
type table struct {
	exact      map[string]*route
	wildcard   map[string]*route // key: the name after "*."
	certs      map[string]*tls.Certificate
	wildCerts  map[string]*tls.Certificate
	challenges map[string]string
	limits     Limits // with defaults
	upstreams  map[string]*upstream
}

// route is a compiled Route.
type route struct {
	upstream      *upstream // nil when suspended
	suspended     bool
	httpsRedirect bool
}

// compile builds a table from a validated cfg. Upstreams already in use by prev are
// reused (keeping their connection pools and resolved addresses); newUpstream makes the
// others.
func compile(cfg Config, prev *table, newUpstream func(key string) (*upstream, error)) (*table, error) {
	t := &table{
		exact:      map[string]*route{},
		wildcard:   map[string]*route{},
		certs:      map[string]*tls.Certificate{},
		wildCerts:  map[string]*tls.Certificate{},
		challenges: map[string]string{},
		limits:     cfg.Limits.withDefaults(),
		upstreams:  map[string]*upstream{},
	}
	for _, rt := range cfg.Routes {
		r := &route{suspended: rt.Suspended, httpsRedirect: rt.HTTPSRedirect}
		if !rt.Suspended {
			up := t.upstreams[rt.Upstream]
			if up == nil && prev != nil {
				up = prev.upstreams[rt.Upstream]
			}
			if up == nil {
				var err error
				if up, err = newUpstream(rt.Upstream); err != nil {
					return nil, err
				}
			}
			t.upstreams[rt.Upstream] = up
			r.upstream = up
		}
		for _, h := range rt.Hosts {
			h = strings.ToLower(h)
			if name, ok := strings.CutPrefix(h, "*."); ok {
				t.wildcard[name] = r
			} else {
				t.exact[h] = r
			}
		}
	}
	for i, c := range cfg.Certificates {
		cert, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("certificates[%d]: %w", i, err)
		}
		for _, h := range c.Hosts {
			h = strings.ToLower(h)
			if name, ok := strings.CutPrefix(h, "*."); ok {
				t.wildCerts[name] = &cert
			} else {
				t.certs[h] = &cert
			}
		}
	}
	for _, ch := range cfg.Challenges {
		t.challenges[acmePrefix+ch.Token] = ch.KeyAuthorization
	}
	for _, ch := range cfg.Verifications {
		t.challenges[verificationPrefix+ch.Token] = ch.KeyAuthorization
	}
	return t, nil
}

// route finds the route of host, which must be lower case without a port.
func (t *table) route(host string) *route {
	if r := t.exact[host]; r != nil {
		return r
	}
	if _, parent, ok := strings.Cut(host, "."); ok && len(t.wildcard) > 0 {
		return t.wildcard[parent]
	}
	return nil
}

// certificate finds the certificate for host (lower case), or nil.
func (t *table) certificate(host string) *tls.Certificate {
	if c := t.certs[host]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(host, "."); ok {
		return t.wildCerts[parent]
	}
	return nil
}

// normalHost lower-cases a Host header and strips its port (and IPv6 brackets). It
// allocates only when the host has upper-case letters.
func normalHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

func (t *table) upstreamTimeout() time.Duration { return time.Duration(t.limits.UpstreamTimeout) }
