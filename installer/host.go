package installer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host is everything the installer asks of the machine. OSHost is the real one; tests wrap
// it or fake parts of it.
type Host interface {
	GOOS() string
	Geteuid() int
	Now() time.Time
	Exists(path string) bool
	ReadFile(path string) ([]byte, error)
	WriteFile(path string, data []byte, perm os.FileMode) error
	MkdirAll(path string, perm os.FileMode) error
	Remove(path string) error
	RemoveAll(path string) error
	LookPath(file string) (string, error)
	// Run runs a program to completion (never through a shell) and returns its combined output.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
	// Start starts a long-running program in its own session, stdin from /dev/null and
	// stdout/stderr appended to logPath. exited receives its end if that comes while this
	// process still runs.
	Start(name string, args []string, logPath string) (pid int, exited <-chan error, err error)
	// Alive reports whether pid runs (a zombie does not) a command line containing want.
	Alive(pid int, want string) bool
	Signal(pid int, sig syscall.Signal) error
	// PortFree returns nil if nothing listens on port (network "tcp" or "udp").
	PortFree(network string, port int) error
	// DefaultRouteAddr is the IPv4 address of the interface with the default route.
	DefaultRouteAddr() (string, error)
	// ServerTime is the Date header of a GET of url.
	ServerTime(ctx context.Context, url string) (time.Time, error)
	// PingDocker checks that the Docker Engine at host (unix:// or tcp://) answers /_ping.
	PingDocker(ctx context.Context, host string) error
}

// OSHost is the machine the installer runs on.
type OSHost struct{}

var _ Host = OSHost{}

func (OSHost) GOOS() string   { return runtime.GOOS }
func (OSHost) Geteuid() int   { return os.Geteuid() }
func (OSHost) Now() time.Time { return time.Now() }

func (OSHost) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (OSHost) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// WriteFile writes through a temporary file and a rename, so a reader never sees half a file.
func (OSHost) WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (OSHost) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (OSHost) Remove(path string) error                     { return os.Remove(path) }
func (OSHost) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (OSHost) LookPath(file string) (string, error)         { return exec.LookPath(file) }

func (OSHost) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	// apt-get must never ask: setup-worker runs under `curl | sh`, without a terminal.
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

func (OSHost) Start(name string, args []string, logPath string) (int, <-chan error, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: it outlives the installer and setup-worker's terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd.Process.Pid, exited, nil
}

func (OSHost) Alive(pid int, want string) bool {
	if pid <= 0 {
		return false
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(state)
			if strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X") {
				return false
			}
		}
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(want))
}

func (OSHost) Signal(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

func (OSHost) PortFree(network string, port int) error {
	addr := ":" + strconv.Itoa(port)
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		return ln.Close()
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		return pc.Close()
	}
	return fmt.Errorf("unknown network %q", network)
}

func (OSHost) DefaultRouteAddr() (string, error) {
	table, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", fmt.Errorf("read the route table: %w", err)
	}
	name, err := defaultRouteInterface(string(table))
	if err != nil {
		return "", err
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", fmt.Errorf("addresses of %s: %w", name, err)
	}
	return firstIPv4(name, addrs)
}

func firstIPv4(name string, addrs []net.Addr) (string, error) {
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String(), nil
		}
	}
	return "", fmt.Errorf("interface %s has no IPv4 address", name)
}

// defaultRouteInterface picks, from /proc/net/route, the interface of the IPv4 default route
// with the lowest metric.
func defaultRouteInterface(table string) (string, error) {
	best, bestMetric := "", -1
	sc := bufio.NewScanner(strings.NewReader(table))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 8 {
			continue // header: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || f[1] != "00000000" || f[7] != "00000000" || flags&0x1 == 0 { // RTF_UP
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	if best == "" {
		return "", errors.New("there is no default route (give --advertise-addr)")
	}
	return best, nil
}

func (OSHost) ServerTime(ctx context.Context, url string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	resp.Body.Close()
	date := resp.Header.Get("Date")
	if date == "" {
		return time.Time{}, errors.New("no Date header")
	}
	return http.ParseTime(date)
}

func (OSHost) PingDocker(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	scheme, addr, ok := strings.Cut(host, "://")
	if !ok {
		return fmt.Errorf("docker host %q has no scheme", host)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://" + addr
	switch scheme {
	case "unix":
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}
		base = "http://docker"
	case "tcp", "http":
	default:
		return fmt.Errorf("docker host %q: only unix:// and tcp:// are supported here", host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker /_ping: %s", resp.Status)
	}
	return nil
}
