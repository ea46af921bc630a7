// Package installer turns a Linux host into a SkyPanel node, for setup-worker.sh: it checks
// the host (preflight), makes sure a Docker Engine runs (installing docker.io with apt-get if
// there is none), enrolls the agent once with its one-time token and keeps the agent running
// as a systemd unit or, on hosts without systemd, as a background process with a pidfile.
// Every step first looks at what is already there, so running it again on an enrolled node
// only (re)starts what is not running. Uninstall reverses it.
package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for Config.
const (
	DefaultDataDir = "/var/lib/skypanel-agent"
	DefaultPrefix  = "/usr/local/bin"
	// DefaultAgentPort is the agent listener's port, used when only the public URL is known.
	DefaultAgentPort = "8443"
)

// Config is what setup-worker passes on.
type Config struct {
	// Token is the one-time enrollment token (spen.<pin>.<secret>). Needed only when the node
	// is not enrolled yet.
	Token string
	// AgentURL is the control plane's agent endpoint. Default: https://<public host>:8443.
	AgentURL string
	// PublicURL is the control plane's public URL (setup-worker's origin); its Date header is
	// the reference for the clock check.
	PublicURL string
	// AdvertiseAddr is the address other nodes reach this one at. Default: the address of the
	// interface with the default route.
	AdvertiseAddr string
	// Labels are node labels, k=v,k2=v2.
	Labels string
	// DataDir holds the agent's identity and state, and here its pidfile and log.
	// Default /var/lib/skypanel-agent.
	DataDir string
	// Prefix is the directory of the skypanel-agent (and skypanel-installer) binaries.
	// Default /usr/local/bin.
	Prefix string
	// DockerHost is the Docker Engine to use (unix:///path or tcp://...). When set, the
	// installer never installs or starts an Engine: that one must answer.
	DockerHost string
	// SkipDockerInstall makes a missing Docker Engine an error instead of an apt-get install.
	SkipDockerInstall bool
	// Purge, on Uninstall, deletes DataDir (the node's identity) too.
	Purge bool
}

// withDefaults fills in defaults and checks the values, naming the flag at fault.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	var errs []error
	for flag, p := range map[string]string{"--data-dir": c.DataDir, "--prefix": c.Prefix} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute path", flag, p))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--public-url: %q is not an http(s) URL", c.PublicURL))
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.AgentURL == "" && c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
			c.AgentURL = "https://" + joinHostPort(u.Hostname(), DefaultAgentPort)
		}
	}
	if c.AgentURL != "" {
		if u, err := url.Parse(c.AgentURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("--agent-url: %q is not an https URL", c.AgentURL))
		}
	}
	if c.Token != "" && !strings.HasPrefix(c.Token, "spen.") {
		errs = append(errs, errors.New("--token: not an enrollment token (they start with spen.)"))
	}
	if c.Labels != "" {
		for _, kv := range strings.Split(c.Labels, ",") {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				errs = append(errs, fmt.Errorf("--labels: %q is not key=value", kv))
			}
		}
	}
	if c.DockerHost != "" && !strings.Contains(c.DockerHost, "://") {
		errs = append(errs, fmt.Errorf("--docker-host: %q needs a scheme (unix:// or tcp://)", c.DockerHost))
	}
	return c, errors.Join(errs...)
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// Installer installs and uninstalls the node software on one host.
type Installer struct {
	cfg  Config
	host Host
	out  io.Writer
}

// New checks cfg and returns an Installer that acts on host and reports progress to out, for
// the person running setup-worker.
func New(cfg Config, host Host, out io.Writer) (*Installer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("installer config: %w", err)
	}
	if host == nil || out == nil {
		return nil, errors.New("new installer: host and out are required")
	}
	return &Installer{cfg: cfg, host: host, out: out}, nil
}

func (in *Installer) say(format string, args ...any) {
	fmt.Fprintf(in.out, format+"\n", args...)
}

func (in *Installer) agentBinary() string { return filepath.Join(in.cfg.Prefix, "skypanel-agent") }

// enrolled reports whether the data dir holds an identity from an earlier enrollment.
func (in *Installer) enrolled() bool {
	return in.host.Exists(filepath.Join(in.cfg.DataDir, "state.json")) &&
		in.host.Exists(filepath.Join(in.cfg.DataDir, "node.crt"))
}

// Install runs every step: preflight, Docker Engine, enrollment, service.
func (in *Installer) Install(ctx context.Context) error {
	enrolled := in.enrolled()
	if !enrolled && in.cfg.Token == "" {
		return errors.New("install: --token is needed to enroll this node")
	}
	if !enrolled && in.cfg.AgentURL == "" {
		return errors.New("install: --agent-url (or --public-url) is needed to enroll this node")
	}
	if !in.host.Exists(in.agentBinary()) {
		return fmt.Errorf("install: %s is missing (setup-worker.sh downloads it)", in.agentBinary())
	}

	checks := in.Preflight(ctx, enrolled)
	failed := 0
	for _, c := range checks {
		in.say("preflight: %-5s %s: %s", c.Status, c.Name, c.Detail)
		if c.Status == Fail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("install: %d preflight check(s) failed", failed)
	}

	if err := in.ensureDocker(ctx); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	if enrolled {
		in.say("enroll: already enrolled (identity in %s); keeping it", in.cfg.DataDir)
	} else if err := in.enroll(ctx); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	if err := in.ensureService(ctx); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	in.say("done: the agent runs; the node appears in the dashboard once it connects")
	return nil
}

func (in *Installer) enroll(ctx context.Context) error {
	addr := in.cfg.AdvertiseAddr
	if addr == "" {
		a, err := in.host.DefaultRouteAddr()
		if err != nil {
			return fmt.Errorf("enroll: no --advertise-addr given and %w", err)
		}
		addr = a
		in.say("enroll: advertise address %s (interface with the default route)", addr)
	}
	if err := in.host.MkdirAll(in.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	args := []string{"enroll", "--agent-url", in.cfg.AgentURL, "--token", in.cfg.Token,
		"--advertise-addr", addr, "--data-dir", in.cfg.DataDir}
	if in.cfg.Labels != "" {
		args = append(args, "--labels", in.cfg.Labels)
	}
	if in.cfg.DockerHost != "" {
		// The agent reports the Engine's version at enrollment: the same Engine it will run with.
		args = append(args, "--docker-host", in.cfg.DockerHost)
	}
	in.say("enroll: %s enroll --agent-url %s --advertise-addr %s", in.agentBinary(), in.cfg.AgentURL, addr)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := in.host.Run(ctx, in.agentBinary(), args...)
	if err != nil {
		// The agent's output never contains the token; ours does not either.
		return fmt.Errorf("enroll: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	if !in.enrolled() {
		return fmt.Errorf("enroll: the agent finished but left no identity in %s", in.cfg.DataDir)
	}
	in.say("enroll: enrolled")
	return nil
}

// Uninstall stops and removes the agent's service and binaries; with Purge also its data.
// Docker Engine and the host's Swarm membership are left alone: removing the node in the
// dashboard drains it and takes it out of the Swarm.
func (in *Installer) Uninstall(ctx context.Context) error {
	if err := in.removeService(ctx); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	for _, name := range []string{"skypanel-agent", "skypanel-installer"} {
		p := filepath.Join(in.cfg.Prefix, name)
		if err := in.host.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("uninstall: %w", err)
		}
	}
	in.say("uninstall: removed the agent's service and binaries")
	if in.cfg.Purge {
		if err := in.host.RemoveAll(in.cfg.DataDir); err != nil {
			return fmt.Errorf("uninstall: %w", err)
		}
		in.say("uninstall: deleted %s (the node's identity); enroll it again with a new token", in.cfg.DataDir)
	} else {
		in.say("uninstall: kept %s (the node's identity); --purge deletes it", in.cfg.DataDir)
	}
	in.say("uninstall: Docker Engine and Swarm membership are unchanged; remove the node in the dashboard")
	return nil
}
