package installer

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeHost answers the preflight's questions from fields; what preflight does not use panics
// through the nil embedded Host.
type fakeHost struct {
	Host
	goos       string
	euid       int
	files      map[string]string // path -> content; presence means it exists
	busy       map[string]bool   // "tcp/2377"
	modprobe   map[string]string // module -> path that appears when it is loaded
	now        time.Time
	serverTime time.Time
	serverErr  error
}

func newFakeHost() *fakeHost {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &fakeHost{
		goos: "linux", euid: 0,
		files: map[string]string{
			"/proc/filesystems":                            "nodev\tsysfs\nnodev\toverlay\n\text4\n",
			"/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
			"/proc/net/ip_vs":                              "",
		},
		busy: map[string]bool{}, modprobe: map[string]string{},
		now: now, serverTime: now,
	}
}

func (f *fakeHost) GOOS() string   { return f.goos }
func (f *fakeHost) Geteuid() int   { return f.euid }
func (f *fakeHost) Now() time.Time { return f.now }
func (f *fakeHost) Exists(p string) bool {
	_, ok := f.files[p]
	return ok
}
func (f *fakeHost) ReadFile(p string) ([]byte, error) {
	c, ok := f.files[p]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(c), nil
}
func (f *fakeHost) LookPath(file string) (string, error) {
	if file == "modprobe" {
		return "/sbin/modprobe", nil
	}
	return "", errors.New("not found")
}
func (f *fakeHost) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	if name == "modprobe" && len(args) == 1 {
		if p, ok := f.modprobe[args[0]]; ok {
			f.files[p] = ""
			return nil, nil
		}
		return []byte("modprobe: FATAL: Module not found"), errors.New("exit status 1")
	}
	return nil, errors.New("unexpected command " + name)
}
func (f *fakeHost) PortFree(network string, port int) error {
	if f.busy[network+"/"+strconv.Itoa(port)] {
		return syscall.EADDRINUSE
	}
	return nil
}
func (f *fakeHost) ServerTime(context.Context, string) (time.Time, error) {
	return f.serverTime, f.serverErr
}

func preflight(t *testing.T, h *fakeHost, enrolled bool, cfg Config) map[string]Check {
	t.Helper()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://panel.example.com"
	}
	in, err := New(cfg, h, io.Discard)
	require.NoError(t, err)
	out := map[string]Check{}
	for _, c := range in.Preflight(context.Background(), enrolled) {
		out[c.Name] = c
	}
	return out
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(h *fakeHost)
		enrolled bool
		want     map[string]Status
		detail   map[string]string
	}{
		{
			name: "a ready host passes every check",
			want: map[string]Status{"os": OK, "root": OK, "kernel module overlay": OK,
				"kernel module br_netfilter": OK, "kernel module ip_vs": OK, "ports": OK, "clock": OK},
		},
		{
			name:  "another OS fails",
			setup: func(h *fakeHost) { h.goos = "darwin" },
			want:  map[string]Status{"os": Fail},
		},
		{
			name:  "a non-root user fails",
			setup: func(h *fakeHost) { h.euid = 1000 },
			want:  map[string]Status{"root": Fail},
		},
		{
			name:   "a kernel without ip_vs is only a warning",
			setup:  func(h *fakeHost) { delete(h.files, "/proc/net/ip_vs") },
			want:   map[string]Status{"kernel module ip_vs": Warn},
			detail: map[string]string{"kernel module ip_vs": "DNS round robin"},
		},
		{
			name: "a missing overlay module fails",
			setup: func(h *fakeHost) {
				h.files["/proc/filesystems"] = "nodev\tsysfs\n\text4\n"
			},
			want: map[string]Status{"kernel module overlay": Fail},
		},
		{
			name: "a module listed in /proc/modules is present",
			setup: func(h *fakeHost) {
				delete(h.files, "/proc/sys/net/bridge/bridge-nf-call-iptables")
				h.files["/proc/modules"] = "br_netfilter 32768 0 - Live 0x0\nbridge 1 1 br_netfilter, Live 0x0\n"
			},
			want: map[string]Status{"kernel module br_netfilter": OK},
		},
		{
			name: "a module that is not loaded is loaded with modprobe",
			setup: func(h *fakeHost) {
				delete(h.files, "/proc/sys/net/bridge/bridge-nf-call-iptables")
				h.modprobe["br_netfilter"] = "/sys/module/br_netfilter"
			},
			want:   map[string]Status{"kernel module br_netfilter": OK},
			detail: map[string]string{"kernel module br_netfilter": "modprobe"},
		},
		{
			name: "busy Swarm ports fail and are named",
			setup: func(h *fakeHost) {
				h.busy["tcp/2377"] = true
				h.busy["udp/4789"] = true
			},
			want:   map[string]Status{"ports": Fail},
			detail: map[string]string{"ports": "2377/tcp (Swarm cluster management), 4789/udp"},
		},
		{
			name:     "an enrolled node does not check the ports its own Swarm holds",
			setup:    func(h *fakeHost) { h.busy["tcp/2377"] = true },
			enrolled: true,
			want:     map[string]Status{"ports": OK},
		},
		{
			name:  "a clock seconds off passes",
			setup: func(h *fakeHost) { h.serverTime = h.now.Add(-5 * time.Second) },
			want:  map[string]Status{"clock": OK},
		},
		{
			name:  "a clock a minute off warns",
			setup: func(h *fakeHost) { h.serverTime = h.now.Add(time.Minute) },
			want:  map[string]Status{"clock": Warn},
		},
		{
			name:   "a clock minutes off fails",
			setup:  func(h *fakeHost) { h.serverTime = h.now.Add(-5 * time.Minute) },
			want:   map[string]Status{"clock": Fail},
			detail: map[string]string{"clock": "5m0s off"},
		},
		{
			name:   "an unreachable control plane only warns about the clock",
			setup:  func(h *fakeHost) { h.serverErr = errors.New("connection refused") },
			want:   map[string]Status{"clock": Warn},
			detail: map[string]string{"clock": "unreachable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost()
			if tt.setup != nil {
				tt.setup(h)
			}
			got := preflight(t, h, tt.enrolled, Config{})
			for name, st := range tt.want {
				require.Contains(t, got, name)
				require.Equal(t, st, got[name].Status, "%s: %s", name, got[name].Detail)
			}
			for name, sub := range tt.detail {
				require.Contains(t, got[name].Detail, sub)
			}
		})
	}
}

func TestPreflightFailureStopsTheInstallBeforeItChangesAnything(t *testing.T) {
	h := newFakeHost()
	h.euid = 1000
	h.files["/usr/local/bin/skypanel-agent"] = ""
	var out strings.Builder
	in, err := New(Config{Token: "spen.pin.secret", PublicURL: "https://panel.example.com"}, h, &out)
	require.NoError(t, err)
	// The fake has no Docker, no MkdirAll, no Start: reaching them would panic.
	err = in.Install(context.Background())
	require.ErrorContains(t, err, "1 preflight check(s) failed")
	require.Contains(t, out.String(), "FAIL  root")
}

func TestConfigIsCheckedAndDefaulted(t *testing.T) {
	cfg, err := Config{PublicURL: "https://panel.example.com/"}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, "https://panel.example.com:8443", cfg.AgentURL)
	require.Equal(t, "https://panel.example.com", cfg.PublicURL)
	require.Equal(t, DefaultDataDir, cfg.DataDir)
	require.Equal(t, DefaultPrefix, cfg.Prefix)

	_, err = Config{Token: "abc", Labels: "a=1,b", DataDir: "rel", AgentURL: "http://x", DockerHost: "/var/run/docker.sock"}.withDefaults()
	for _, want := range []string{"--token", "--labels: \"b\"", "--data-dir", "--agent-url", "--docker-host"} {
		require.ErrorContains(t, err, want)
	}
}

func TestDefaultRouteInterfaceIsTheLowestMetricDefault(t *testing.T) {
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth1\t00000000\t0100000A\t0003\t0\t0\t200\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	name, err := defaultRouteInterface(table)
	require.NoError(t, err)
	require.Equal(t, "eth0", name)

	_, err = defaultRouteInterface("Iface\tDestination\n" + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
	require.ErrorContains(t, err, "no default route")
}
