package edge

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ConfigFile is the name WriteConfig gives the configuration inside its directory. The
// agent bind-mounts the directory (not the file) into the edge container, so a rename in
// the directory is seen inside the container.
const ConfigFile = "edge.json"

// Config is everything the edge serves: routes, certificates, pending ACME HTTP-01
// challenges and limits. The agent writes it with WriteConfig; the edge reloads it when
// the file changes.
type Config struct {
	Routes       []Route       `json:"routes"`
	Certificates []Certificate `json:"certificates,omitempty"`
	Challenges   []Challenge   `json:"challenges,omitempty"`
	// Verifications are domain ownership proofs, answered on
	// /.well-known/skypanel-challenge/<Token> for any host (Token is also the answer).
	Verifications []Challenge `json:"verifications,omitempty"`
	Limits        Limits      `json:"limits"`
}

// Route sends requests for its hosts to one upstream.
type Route struct {
	// Hosts are exact host names (no port, matched case-insensitively); one may start
	// with a wildcard label, "*.example.com", which matches exactly one more label
	// (a.example.com, not a.b.example.com or example.com). An exact name wins over a
	// wildcard.
	Hosts []string `json:"hosts"`
	// Upstream is "name:port" (a dnsrr service name, re-resolved every ResolveInterval,
	// every address it resolves to receives requests in turn) or an "ip:port" literal.
	// The port defaults to 80.
	Upstream string `json:"upstream,omitempty"`
	// Suspended answers 503 with a page saying the app is suspended; Upstream may then
	// be empty.
	Suspended bool `json:"suspended,omitempty"`
	// HTTPSRedirect answers plain-HTTP requests with a 308 to https:// when a
	// certificate for the host exists (ACME challenges are never redirected).
	HTTPSRedirect bool `json:"https_redirect,omitempty"`
}

// Certificate is a PEM certificate chain and its key, served for the SNI names in Hosts
// (same matching rules as Route.Hosts).
type Certificate struct {
	Hosts   []string `json:"hosts"`
	CertPEM string   `json:"cert_pem"`
	KeyPEM  string   `json:"key_pem"`
}

// Challenge is a pending ACME HTTP-01 challenge, answered on
// /.well-known/acme-challenge/<Token> for any host.
type Challenge struct {
	Token            string `json:"token"`
	KeyAuthorization string `json:"key_authorization"`
}

// Limits bound what clients and upstreams may take. Zero fields mean the default.
type Limits struct {
	// MaxBodyBytes caps a request body; a larger one is answered 413. Default 100 MiB;
	// negative means no limit.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// ReadHeaderTimeout bounds reading a client's request header. Default 10 s.
	ReadHeaderTimeout Duration `json:"read_header_timeout,omitempty"`
	// UpstreamTimeout bounds the wait for an upstream's response header once the
	// request is sent; past it the client gets 504. Default 60 s.
	UpstreamTimeout Duration `json:"upstream_timeout,omitempty"`
	// IdleTimeout closes a client's keep-alive connection idle this long. Default 120 s.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
}

// Defaults of Limits.
const (
	DefaultMaxBodyBytes      = 100 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultUpstreamTimeout   = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// withDefaults returns l with zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = Duration(DefaultReadHeaderTimeout)
	}
	if l.UpstreamTimeout == 0 {
		l.UpstreamTimeout = Duration(DefaultUpstreamTimeout)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	return l
}

// Duration is a time.Duration written in JSON as a string such as "30s" (a number of
// nanoseconds is accepted too).
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration %s: want a string such as \"30s\"", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Validate checks cfg the way the edge will read it: host names, upstream addresses,
// that every certificate parses and that no host is routed twice.
func (cfg Config) Validate() error {
	seen := map[string]int{}
	for i, rt := range cfg.Routes {
		if len(rt.Hosts) == 0 {
			return fmt.Errorf("routes[%d].hosts: at least one host is required", i)
		}
		for _, h := range rt.Hosts {
			if err := checkHost(h); err != nil {
				return fmt.Errorf("routes[%d].hosts: %w", i, err)
			}
			key := strings.ToLower(h)
			if j, dup := seen[key]; dup {
				return fmt.Errorf("routes[%d].hosts: %q is already routed by routes[%d]", i, h, j)
			}
			seen[key] = i
		}
		if rt.Upstream == "" && !rt.Suspended {
			return fmt.Errorf("routes[%d].upstream: required unless the route is suspended", i)
		}
		if rt.Upstream != "" {
			if _, _, err := splitUpstream(rt.Upstream); err != nil {
				return fmt.Errorf("routes[%d].upstream: %w", i, err)
			}
		}
	}
	for i, c := range cfg.Certificates {
		if len(c.Hosts) == 0 {
			return fmt.Errorf("certificates[%d].hosts: at least one host is required", i)
		}
		for _, h := range c.Hosts {
			if err := checkHost(h); err != nil {
				return fmt.Errorf("certificates[%d].hosts: %w", i, err)
			}
		}
		if _, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM)); err != nil {
			return fmt.Errorf("certificates[%d]: %w", i, err)
		}
	}
	for field, list := range map[string][]Challenge{"challenges": cfg.Challenges, "verifications": cfg.Verifications} {
		for i, ch := range list {
			if ch.Token == "" || strings.ContainsAny(ch.Token, "/?#") {
				return fmt.Errorf("%s[%d].token: want a non-empty token without / ? #", field, i)
			}
			if ch.KeyAuthorization == "" {
				return fmt.Errorf("%s[%d].key_authorization: required", field, i)
			}
		}
	}
	l := cfg.Limits
	if l.ReadHeaderTimeout < 0 || l.UpstreamTimeout < 0 || l.IdleTimeout < 0 {
		return errors.New("limits: timeouts cannot be negative")
	}
	return nil
}

// checkHost accepts a DNS name, optionally starting with one "*." wildcard label.
func checkHost(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 {
		return fmt.Errorf("%q: want a host name", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q: want a host name without a port or empty labels", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q: %q is not allowed in a host name (one leading \"*.\" is)", h, c)
			}
		}
	}
	return nil
}

// splitUpstream splits "name:port" (port defaulting to 80).
func splitUpstream(s string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			host, p = s, "80"
		} else {
			return "", 0, fmt.Errorf("%q: want name:port", s)
		}
	}
	port, err = strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q: want name:port with a port from 1 to 65535", s)
	}
	return host, port, nil
}

// ReadConfig reads and validates the configuration file at path.
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read edge config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("read edge config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("read edge config %s: %w", path, err)
	}
	return cfg, nil
}

// WriteConfig validates cfg and replaces dir/ConfigFile atomically (a temporary file in
// the same directory, synced, then renamed), so the edge never reads half a file. The
// file holds private keys: it is readable by its owner only.
func WriteConfig(dir string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("write edge config: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("write edge config: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+ConfigFile+".*")
	if err != nil {
		return fmt.Errorf("write edge config: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ConfigFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write edge config: %w", err)
	}
	return nil
}
