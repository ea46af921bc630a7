// Package config turns flags and SKYPANEL_* environment variables into the control plane's
// Config. Every setting has a flag; its environment variable is the flag's name in upper case
// with dashes as underscores and a SKYPANEL_ prefix (--database-url is SKYPANEL_DATABASE_URL).
// A flag given on the command line wins over the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"skypanel/controlplane/internal/mail"
)

// Config is everything the control plane's server needs to start.
type Config struct {
	// Listen is the public listener's address (dashboard, API). Default 127.0.0.1:8080.
	Listen string
	// DatabaseURL is the Postgres connection URL. Required.
	DatabaseURL string
	// PublicURL is the address users reach the dashboard at, used in emailed links.
	// Default http:// + Listen.
	PublicURL string
	// TrustProxyHeaders takes the client address from X-Forwarded-For. Only behind a proxy.
	TrustProxyHeaders bool
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// AccessTokenTTL is an access token's lifetime. Default 15m.
	AccessTokenTTL time.Duration
	// SessionTTL is how long a session (and its refresh tokens) lasts without a new sign-in.
	// Default 720h (30 days).
	SessionTTL time.Duration
	// InvitationTTL is how long an invitation link works. Default 168h (7 days).
	InvitationTTL time.Duration
	// ShutdownTimeout is how long in-flight requests get to finish on shutdown. Default 15s.
	ShutdownTimeout time.Duration
	// LoginFailuresPerAccount and LoginFailuresPerAddress are how many failed log-ins are
	// allowed within LoginFailureWindow before further attempts are refused.
	// Defaults 5 and 50 per 15m.
	LoginFailuresPerAccount int
	LoginFailuresPerAddress int
	LoginFailureWindow      time.Duration
	// Mail is the SMTP configuration.
	Mail mail.Config
	// DBMaxConns caps the Postgres pool. Default 0: pgx's default (max(4, CPUs)).
	DBMaxConns int
	// MasterKeyFile holds the master keys that seal secrets at rest (see package secrets).
	// Required; `skypanel-controlplane master-key generate` makes one.
	MasterKeyFile string
	// AgentListen is the agent listener's address (TLS, node certificates). Default 127.0.0.1:8443.
	AgentListen string
	// AgentURL is the address agents dial. Default https:// + AgentListen.
	AgentURL string
	// NodeCertTTL is a node certificate's lifetime (at most 7 days). Default 72h.
	NodeCertTTL time.Duration
	// NodeTTL and NodeGrace: a node with no report for their sum is down. Defaults 30s and 15s.
	NodeTTL   time.Duration
	NodeGrace time.Duration
	// ReportInterval is how often agents report. Default 10s.
	ReportInterval time.Duration
	// AppsDomain is the parent of apps' default hostnames.
	AppsDomain string
	// DeployStepTimeout bounds each step of a deployment.
	DeployStepTimeout time.Duration
	// DeployPoll is how often a waiting deployment looks again. A manager's answer to a
	// command, announced by whichever replica records it, wakes it at once. Default 100ms.
	DeployPoll time.Duration
	// ACMEDirectory, ACMEEmail and ACMECAFile configure certificates for custom domains.
	ACMEDirectory, ACMEEmail, ACMECAFile string
	// DNSResolver is the DNS server domain ownership checks ask.
	DNSResolver string
	// PaymentProvider takes top-ups: none, test (a local checkout page that pays without
	// money, for development and tests) or stripe. Default none.
	PaymentProvider string
	// StripeSecretKey and StripeWebhookSecret configure the stripe provider.
	StripeSecretKey, StripeWebhookSecret string
	// BillingCurrency is the currency of a new organization's wallet. Default USD.
	BillingCurrency string
	// LowBalanceThreshold is the balance (minor units) at or under which an organization is
	// warned, unless it set its own. Default 500.
	LowBalanceThreshold int
	// BillingGracePeriod is how long a negative balance lasts before the organization's
	// apps are suspended. Default 72h.
	BillingGracePeriod time.Duration
	// DebugListen serves Go's pprof profiles (/debug/pprof/) when set. Default none.
	DebugListen string
	// DownloadsDir holds the agent and installer binaries setup-worker downloads. Default bin.
	DownloadsDir string

	// flags names the flags Flags registered: the ones ApplyEnv may set.
	flags []string
}

// Flags registers every setting on fs with its default, and returns the Config that parsing
// fs fills. Call ApplyEnv after parsing to take unset flags from the environment.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	str := func(p *string, name, def, usage string) {
		c.flags = append(c.flags, name)
		fs.StringVar(p, name, def, usage+" (env "+EnvName(name)+")")
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		c.flags = append(c.flags, name)
		fs.DurationVar(p, name, def, usage+" (env "+EnvName(name)+")")
	}
	num := func(p *int, name string, def int, usage string) {
		c.flags = append(c.flags, name)
		fs.IntVar(p, name, def, usage+" (env "+EnvName(name)+")")
	}
	str(&c.Listen, "listen", "127.0.0.1:8080", "public listener address: dashboard and API")
	str(&c.DatabaseURL, "database-url", "", "Postgres URL, e.g. postgres://user@127.0.0.1:5432/skypanel (required)")
	str(&c.PublicURL, "public-url", "", "URL users reach the dashboard at, for emailed links (default http://LISTEN)")
	c.flags = append(c.flags, "trust-proxy-headers")
	fs.BoolVar(&c.TrustProxyHeaders, "trust-proxy-headers", false,
		"take the client address from X-Forwarded-For; only behind a proxy that sets it (env "+EnvName("trust-proxy-headers")+")")
	str(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	dur(&c.AccessTokenTTL, "access-token-ttl", 15*time.Minute, "access token lifetime")
	dur(&c.SessionTTL, "session-ttl", 30*24*time.Hour, "session (refresh token) lifetime")
	dur(&c.InvitationTTL, "invitation-ttl", 7*24*time.Hour, "invitation link lifetime")
	dur(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "grace period for in-flight requests on shutdown")
	num(&c.LoginFailuresPerAccount, "login-failures-per-account", 5, "failed log-ins allowed per account per window")
	num(&c.LoginFailuresPerAddress, "login-failures-per-address", 50, "failed log-ins allowed per client address per window")
	dur(&c.LoginFailureWindow, "login-failure-window", 15*time.Minute, "window for counting failed log-ins")
	num(&c.DBMaxConns, "db-max-conns", 0, "Postgres pool size (0: max(4, CPUs))")
	str(&c.MasterKeyFile, "master-key-file", "", "file with the master keys that seal secrets at rest (required; see `master-key generate`)")
	str(&c.AgentListen, "agent-listen", "127.0.0.1:8443", "agent listener address (TLS with node certificates)")
	str(&c.AgentURL, "agent-url", "", "URL agents dial (default https://AGENT-LISTEN)")
	dur(&c.NodeCertTTL, "node-cert-ttl", 72*time.Hour, "node certificate lifetime (at most 168h)")
	dur(&c.NodeTTL, "node-ttl", 30*time.Second, "a node with no report for node-ttl plus node-grace is down")
	dur(&c.NodeGrace, "node-grace", 15*time.Second, "grace after node-ttl before a node is marked down")
	dur(&c.ReportInterval, "report-interval", 10*time.Second, "how often agents report")
	str(&c.AppsDomain, "apps-domain", "apps.localhost", "parent domain of apps' default hostnames: <app>-<org>.APPS-DOMAIN")
	str(&c.ACMEDirectory, "acme-directory", "", "ACME directory URL for custom domains' certificates; empty: no certificates")
	str(&c.ACMEEmail, "acme-email", "", "contact email of the ACME account")
	str(&c.ACMECAFile, "acme-ca-file", "", "PEM file of the CA to trust for the ACME directory's HTTPS (empty: the system's)")
	str(&c.DNSResolver, "dns-resolver", "", "host:port of the DNS server for domain ownership checks (empty: the system's)")
	dur(&c.DeployStepTimeout, "deploy-step-timeout", 5*time.Minute, "how long a deployment waits in one step (replicas healthy, a manager answering) before it fails")
	dur(&c.DeployPoll, "deploy-poll", 100*time.Millisecond, "how often a waiting deployment looks again (a manager's answer wakes it at once)")
	str(&c.PaymentProvider, "payment-provider", "none", "how organizations top up their wallets: none, test (a local checkout page, no money moves) or stripe")
	str(&c.StripeSecretKey, "stripe-secret-key", "", "Stripe API secret key (payment-provider stripe)")
	str(&c.StripeWebhookSecret, "stripe-webhook-secret", "", "signing secret of the Stripe webhook endpoint PUBLIC-URL/webhooks/stripe (payment-provider stripe)")
	str(&c.BillingCurrency, "billing-currency", "USD", "ISO 4217 currency of new organizations' wallets")
	num(&c.LowBalanceThreshold, "low-balance-threshold", 500, "balance in minor units at or under which an organization is warned (organizations may set their own)")
	dur(&c.BillingGracePeriod, "billing-grace-period", 72*time.Hour, "how long a negative balance lasts before the organization's apps are suspended")
	str(&c.DebugListen, "debug-listen", "", "address serving Go's pprof profiles at /debug/pprof/, e.g. 127.0.0.1:6060 (empty: none; keep it on loopback)")
	str(&c.DownloadsDir, "downloads-dir", "bin", "directory with the agent and installer binaries that setup-worker downloads")
	str(&c.Mail.Addr, "smtp-addr", "", "SMTP server host:port; empty logs mail instead of sending it")
	str(&c.Mail.Username, "smtp-username", "", "SMTP username (PLAIN auth when set)")
	str(&c.Mail.Password, "smtp-password", "", "SMTP password")
	str(&c.Mail.From, "smtp-from", "SkyPanel <noreply@skypanel.localhost>", "sender address of the platform's mail")
	str(&c.Mail.TLS, "smtp-tls", "starttls", "SMTP transport security: starttls, tls or none")
	return c
}

// ApplyEnv sets every config flag not given on the command line from its SKYPANEL_* variable,
// if that is set. Defaults are never taken from the environment, so `-h` cannot print secrets.
func (c *Config) ApplyEnv(fs *flag.FlagSet, env func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, name := range c.flags {
		v := env(EnvName(name))
		if given[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvName(name), err))
		}
	}
	return errors.Join(errs...)
}

// FlagNames lists the config's flags, for documentation checks.
func (c *Config) FlagNames() []string { return append([]string(nil), c.flags...) }

// EnvName is the environment variable for a flag: --database-url is SKYPANEL_DATABASE_URL.
func EnvName(flagName string) string {
	return "SKYPANEL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate checks the config and fills derived defaults; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("--database-url (SKYPANEL_DATABASE_URL) is required"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen: %w", err))
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--public-url: %q is not an http(s) URL", c.PublicURL))
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		errs = append(errs, errors.New("--access-token-ttl: must be between 1m and 24h"))
	}
	if c.SessionTTL < c.AccessTokenTTL {
		errs = append(errs, errors.New("--session-ttl: must be at least --access-token-ttl"))
	}
	if _, _, err := net.SplitHostPort(c.AgentListen); err != nil {
		errs = append(errs, fmt.Errorf("--agent-listen: %w", err))
	}
	if c.AgentURL == "" {
		c.AgentURL = "https://" + c.AgentListen
	}
	if u, err := url.Parse(c.AgentURL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("--agent-url: %q is not an https URL", c.AgentURL))
	}
	c.AgentURL = strings.TrimRight(c.AgentURL, "/")
	if c.NodeCertTTL < time.Hour || c.NodeCertTTL > 7*24*time.Hour {
		errs = append(errs, errors.New("--node-cert-ttl: must be between 1h and 168h"))
	}
	if c.NodeTTL < time.Second || c.NodeGrace < time.Second || c.ReportInterval < time.Second || c.ReportInterval > c.NodeTTL {
		errs = append(errs, errors.New("--node-ttl, --node-grace, --report-interval: need 1s <= report-interval <= node-ttl and grace >= 1s"))
	}
	if c.DeployPoll < 10*time.Millisecond {
		errs = append(errs, errors.New("--deploy-poll: must be at least 10ms"))
	}
	if c.InvitationTTL < time.Minute {
		errs = append(errs, errors.New("--invitation-ttl: must be at least 1m"))
	}
	if c.LoginFailuresPerAccount < 1 || c.LoginFailuresPerAddress < 1 || c.LoginFailureWindow <= 0 {
		errs = append(errs, errors.New("--login-failures-*: limits and window must be positive"))
	}
	if err := c.Mail.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--%w", err))
	}
	if c.DebugListen != "" {
		if _, _, err := net.SplitHostPort(c.DebugListen); err != nil {
			errs = append(errs, fmt.Errorf("--debug-listen: %w", err))
		}
	}
	switch c.PaymentProvider {
	case "none", "test":
	case "stripe":
		if c.StripeSecretKey == "" || c.StripeWebhookSecret == "" {
			errs = append(errs, errors.New("--stripe-secret-key and --stripe-webhook-secret: required with --payment-provider stripe"))
		}
	default:
		errs = append(errs, fmt.Errorf("--payment-provider: %q is not none, test or stripe", c.PaymentProvider))
	}
	if !currencyCode.MatchString(c.BillingCurrency) {
		errs = append(errs, fmt.Errorf("--billing-currency: %q is not a 3-letter ISO 4217 code", c.BillingCurrency))
	}
	if c.LowBalanceThreshold < 0 {
		errs = append(errs, errors.New("--low-balance-threshold: must not be negative"))
	}
	if c.BillingGracePeriod < 0 {
		errs = append(errs, errors.New("--billing-grace-period: must not be negative"))
	}
	return errors.Join(errs...)
}

// ValidateServe is Validate plus what only serving needs (commands like migrate do not need
// the master key).
func (c *Config) ValidateServe() error {
	err := c.Validate()
	if c.MasterKeyFile == "" {
		err = errors.Join(err, errors.New("--master-key-file (SKYPANEL_MASTER_KEY_FILE) is required; make one with `skypanel-controlplane master-key generate --out FILE`"))
	}
	return err
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Level is the parsed log level (call after Validate).
func (c *Config) Level() slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	return lvl
}
