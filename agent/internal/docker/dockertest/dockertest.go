// Package dockertest holds a test helper that starts a private Docker Engine: its own
// socket, data root, exec root and pid file under a short directory in /tmp, and its own
// network namespace, so that swarm ports (2377, 7946, 4789) never collide with another
// Engine on the machine. Without dockerd the test is skipped, except under CI=true where it
// fails: CI must prove the real-Engine paths.
package dockertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Daemon is a running private dockerd.
type Daemon struct {
	// Host is the Engine's address, unix://<dir>/d.sock.
	Host string
	// Dir holds the socket, data root, exec root, pid file and log.
	Dir string
	cmd *exec.Cmd
}

// Options shape a Daemon.
type Options struct {
	// SharedNetwork runs dockerd in the test's own network namespace instead of a fresh
	// one (whose only interface is loopback).
	SharedNetwork bool
	// StartTimeout bounds the wait for the socket (default 90 s).
	StartTimeout time.Duration
}

// Start starts a private dockerd and stops it when the test ends.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("dockertest: "+format+" (CI=true requires a real dockerd)", args...)
		}
		t.Skipf("dockertest: "+format, args...)
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		unavailable("dockerd is not installed (apt-get install -y docker.io)")
	}
	if os.Geteuid() != 0 {
		unavailable("dockerd needs root")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	// A short directory: a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "dkt")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Dir: dir, Host: "unix://" + filepath.Join(dir, "d.sock")}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dockerd,
		"--host", d.Host,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "d.pid"),
		"--bridge", "none",
		"--iptables=false",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if !opts.SharedNetwork {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		t.Fatalf("dockertest: start dockerd: %v", err)
	}
	logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() { d.stop(t, exited) })

	if !opts.SharedNetwork {
		// A fresh network namespace has loopback down; swarm advertises 127.0.0.1.
		out, err := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(d.cmd.Process.Pid)+"/ns/net",
			"ip", "link", "set", "lo", "up").CombinedOutput()
		if err != nil {
			t.Fatalf("dockertest: bring up loopback in dockerd's namespace: %v: %s", err, out)
		}
	}

	deadline := time.Now().Add(opts.StartTimeout)
	for {
		if err := ping(filepath.Join(dir, "d.sock")); err == nil {
			return d
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("dockertest: dockerd exited: %v\n%s", err, d.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockertest: dockerd did not answer on %s within %s\n%s", d.Host, opts.StartTimeout, d.Log())
		}
	}
}

// Log returns the end of dockerd's log.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// ping asks the Engine's /_ping over the socket with a raw HTTP request, so the helper
// needs no client of its own.
func ping(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.0 200")) && !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
		return errors.New("not ready")
	}
	return nil
}

func (d *Daemon) stop(t testing.TB, exited chan error) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-exited
	}
	if t.Failed() {
		t.Logf("dockertest: dockerd log (%s):\n%s", d.Dir, d.Log())
	}
	if err := removeAll(d.Dir); err != nil {
		t.Logf("dockertest: remove %s: %v", d.Dir, err)
	}
}

// removeAll removes the daemon's directory, unmounting anything dockerd left mounted.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range bytes.Split(mounts, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 4 && bytes.HasPrefix(f[4], []byte(dir+"/")) {
			_ = syscall.Unmount(string(f[4]), syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove daemon dir: %w", err)
	}
	return nil
}
