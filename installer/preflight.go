package installer

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Status is a preflight check's outcome.
type Status string

// Check outcomes. Only Fail stops the installation.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Check is one preflight finding.
type Check struct {
	Name   string
	Status Status
	Detail string
}

// Clock skew limits. Node certificates and enrollment tokens are time-bound: a clock minutes
// off makes TLS with the control plane fail in ways that are hard to read.
const (
	clockWarnSkew = 30 * time.Second
	clockFailSkew = 2 * time.Minute
)

// kernelModule is a module Docker Swarm needs and how to tell it is there: a loaded module
// shows in /sys/module, a built-in one only by what it provides.
type kernelModule struct {
	name     string
	provides []string // any of these paths existing means the module is present
	fs       string   // or this filesystem listed in /proc/filesystems
	required bool
	why      string
}

var kernelModules = []kernelModule{
	{name: "overlay", fs: "overlay", required: true, why: "Docker's overlay2 storage driver"},
	{name: "br_netfilter", provides: []string{"/proc/sys/net/bridge/bridge-nf-call-iptables"}, required: true,
		why: "container networking through iptables"},
	{name: "ip_vs", provides: []string{"/proc/net/ip_vs"},
		why: "Swarm's routing mesh and virtual IPs; SkyPanel's services use DNS round robin and work without it"},
}

// port is one that Swarm or the agent listens on.
type port struct {
	network string
	number  int
	who     string
}

var nodePorts = []port{
	{"tcp", 2377, "Swarm cluster management"},
	{"tcp", 7946, "Swarm node gossip"},
	{"udp", 7946, "Swarm node gossip"},
	{"udp", 4789, "Swarm overlay networks (VXLAN)"},
	{"tcp", 7947, "agent gossip"},
	{"udp", 7947, "agent gossip"},
}

// Preflight checks the host. On an enrolled node the Swarm and agent ports are ours already,
// so they are not checked.
func (in *Installer) Preflight(ctx context.Context, enrolled bool) []Check {
	h := in.host
	var checks []Check
	add := func(name string, st Status, format string, args ...any) {
		checks = append(checks, Check{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}

	if goos := h.GOOS(); goos == "linux" {
		add("os", OK, "linux")
	} else {
		add("os", Fail, "SkyPanel nodes run Linux, this is %s", goos)
	}
	if h.Geteuid() == 0 {
		add("root", OK, "running as root")
	} else {
		add("root", Fail, "run as root (the installer manages Docker and a system service)")
	}

	for _, m := range kernelModules {
		name := "kernel module " + m.name
		if in.modulePresent(m) {
			add(name, OK, "present")
			continue
		}
		// Not loaded: load it, as Docker would need it anyway.
		if _, err := h.LookPath("modprobe"); err == nil {
			if _, err := h.Run(ctx, "modprobe", m.name); err == nil && in.modulePresent(m) {
				add(name, OK, "loaded with modprobe")
				continue
			}
		}
		if m.required {
			add(name, Fail, "missing; needed for %s", m.why)
		} else {
			add(name, Warn, "missing; needed for %s", m.why)
		}
	}

	if enrolled {
		add("ports", OK, "not checked: the node is enrolled and Swarm and the agent hold them")
	} else {
		var busy []string
		for _, p := range nodePorts {
			if err := h.PortFree(p.network, p.number); err != nil {
				busy = append(busy, fmt.Sprintf("%d/%s (%s)", p.number, p.network, p.who))
			}
		}
		if len(busy) == 0 {
			add("ports", OK, "2377/tcp, 7946/tcp+udp, 4789/udp, 7947/tcp+udp are free")
		} else {
			add("ports", Fail, "in use: %s; is this host already in a Swarm?", strings.Join(busy, ", "))
		}
	}

	checks = append(checks, in.checkClock(ctx))
	return checks
}

func (in *Installer) modulePresent(m kernelModule) bool {
	h := in.host
	if h.Exists("/sys/module/" + m.name) {
		return true
	}
	for _, p := range m.provides {
		if h.Exists(p) {
			return true
		}
	}
	if m.fs != "" {
		if fss, err := h.ReadFile("/proc/filesystems"); err == nil {
			for _, line := range strings.Split(string(fss), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == m.fs {
					return true
				}
			}
		}
	}
	if mods, err := h.ReadFile("/proc/modules"); err == nil {
		for _, line := range strings.Split(string(mods), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == m.name {
				return true
			}
		}
	}
	return false
}

// checkClock compares the local clock with the control plane's Date header.
func (in *Installer) checkClock(ctx context.Context) Check {
	c := Check{Name: "clock"}
	if in.cfg.PublicURL == "" {
		c.Status, c.Detail = Warn, "not checked: no --public-url"
		return c
	}
	server, err := in.host.ServerTime(ctx, in.cfg.PublicURL+"/healthz")
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("not checked: control plane unreachable: %v", err)
		return c
	}
	skew := in.host.Now().Sub(server)
	if skew < 0 {
		skew = -skew
	}
	// The Date header has whole seconds.
	skew = skew.Truncate(time.Second)
	switch {
	case skew > clockFailSkew:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s off the control plane's clock (limit %s); certificates would fail: sync the clock (NTP)", skew, clockFailSkew)
	case skew > clockWarnSkew:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s off the control plane's clock; run NTP", skew)
	default:
		c.Status = OK
		c.Detail = fmt.Sprintf("within %s of the control plane", clockWarnSkew)
	}
	return c
}
