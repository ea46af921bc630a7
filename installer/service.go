package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

const (
	unitName = "skypanel-agent.service"
	unitPath = "/etc/systemd/system/" + unitName
	// systemdRunDir exists when systemd is PID 1 (sd_booted).
	systemdRunDir = "/run/systemd/system"
	// startGrace is how long a freshly started background agent must stay up to count as
	// started; an agent that cannot start (bad flags, unreadable identity) exits sooner.
	startGrace  = 2 * time.Second
	stopTimeout = 20 * time.Second
)

var unitTemplate = template.Must(template.New("unit").Funcs(template.FuncMap{"quote": systemdQuote}).Parse(
	`# Written by skypanel-installer; setup-worker.sh rewrites it. Remove it with
# setup-worker.sh --uninstall.
[Unit]
Description=SkyPanel node agent
Wants=network-online.target docker.service
After=network-online.target docker.service

[Service]
Type=simple
ExecStart={{quote .Binary}} run --data-dir {{quote .DataDir}}{{if .DockerHost}} --docker-host {{quote .DockerHost}}{{end}}
Restart=always
RestartSec=5
TimeoutStopSec=30
# The agent drives the Docker Engine, which is root's anyway.
User=root
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`))

// unitParams fill unitTemplate.
type unitParams struct {
	Binary     string
	DataDir    string
	DockerHost string
}

// renderUnit is the systemd unit that runs the agent.
func renderUnit(p unitParams) ([]byte, error) {
	var b bytes.Buffer
	if err := unitTemplate.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	return b.Bytes(), nil
}

// systemdQuote quotes one ExecStart argument: double quotes, backslash escapes, and the
// specifiers % and $ doubled so systemd takes them literally.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$")
	return `"` + r.Replace(s) + `"`
}

func (in *Installer) systemd() bool { return in.host.Exists(systemdRunDir) }

func (in *Installer) pidfile() string  { return filepath.Join(in.cfg.DataDir, "agent.pid") }
func (in *Installer) agentLog() string { return filepath.Join(in.cfg.DataDir, "agent.log") }

// ensureService makes sure the agent runs and keeps running.
func (in *Installer) ensureService(ctx context.Context) error {
	if in.systemd() {
		return in.ensureUnit(ctx)
	}
	return in.ensureBackground()
}

func (in *Installer) ensureUnit(ctx context.Context) error {
	h := in.host
	unit, err := renderUnit(unitParams{Binary: in.agentBinary(), DataDir: in.cfg.DataDir, DockerHost: in.cfg.DockerHost})
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	old, _ := h.ReadFile(unitPath)
	changed := !bytes.Equal(old, unit)
	systemctl := func(args ...string) error {
		if out, err := h.Run(ctx, "systemctl", args...); err != nil {
			return fmt.Errorf("service: systemctl %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if changed {
		if err := h.WriteFile(unitPath, unit, 0o644); err != nil {
			return fmt.Errorf("service: %w", err)
		}
		if err := systemctl("daemon-reload"); err != nil {
			return err
		}
	}
	if err := systemctl("enable", unitName); err != nil {
		return err
	}
	verb := "start" // a no-op when it runs already
	if changed {
		verb = "restart"
	}
	if err := systemctl(verb, unitName); err != nil {
		return err
	}
	in.say("service: %s enabled and running (journalctl -u %s)", unitName, unitName)
	return nil
}

// ensureBackground starts `skypanel-agent run` in the background unless the pidfile names a
// running agent. Without systemd nothing restarts it after a crash or a reboot: run
// setup-worker.sh again.
func (in *Installer) ensureBackground() error {
	h := in.host
	if pid := in.runningAgent(); pid > 0 {
		in.say("service: the agent runs already (pid %d, log %s)", pid, in.agentLog())
		return nil
	}
	if err := h.MkdirAll(in.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	args := []string{"run", "--data-dir", in.cfg.DataDir}
	if in.cfg.DockerHost != "" {
		args = append(args, "--docker-host", in.cfg.DockerHost)
	}
	pid, exited, err := h.Start(in.agentBinary(), args, in.agentLog())
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if err := h.WriteFile(in.pidfile(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	select {
	case err := <-exited:
		h.Remove(in.pidfile())
		return fmt.Errorf("service: the agent exited right after starting (%v); see %s", err, in.agentLog())
	case <-time.After(startGrace):
	}
	in.say("service: started the agent in the background (pid %d, log %s); no systemd here, so it does not restart by itself", pid, in.agentLog())
	return nil
}

// runningAgent is the pid of the agent named in the pidfile if it runs, else 0.
func (in *Installer) runningAgent() int {
	data, err := in.host.ReadFile(in.pidfile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !in.host.Alive(pid, "skypanel-agent") {
		return 0
	}
	return pid
}

// removeService stops the agent and removes its unit or pidfile.
func (in *Installer) removeService(ctx context.Context) error {
	h := in.host
	if in.systemd() || h.Exists(unitPath) {
		if h.Exists(unitPath) {
			if out, err := h.Run(ctx, "systemctl", "disable", "--now", unitName); err != nil {
				return fmt.Errorf("service: systemctl disable --now: %w\n%s", err, strings.TrimSpace(string(out)))
			}
			if err := h.Remove(unitPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("service: %w", err)
			}
			if out, err := h.Run(ctx, "systemctl", "daemon-reload"); err != nil {
				return fmt.Errorf("service: systemctl daemon-reload: %w\n%s", err, strings.TrimSpace(string(out)))
			}
			in.say("service: stopped and removed %s", unitName)
		}
	}
	if pid := in.runningAgent(); pid > 0 {
		if err := in.stop(ctx, pid); err != nil {
			return err
		}
		in.say("service: stopped the agent (pid %d)", pid)
	}
	if err := h.Remove(in.pidfile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service: %w", err)
	}
	return nil
}

// stop sends SIGTERM, and SIGKILL if the agent is still there after stopTimeout.
func (in *Installer) stop(ctx context.Context, pid int) error {
	h := in.host
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := h.Signal(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("service: signal agent %d: %w", pid, err)
		}
		wctx, cancel := context.WithTimeout(ctx, stopTimeout)
		gone := waitFor(wctx, func() bool { return !h.Alive(pid, "skypanel-agent") })
		cancel()
		if gone {
			return nil
		}
	}
	return fmt.Errorf("service: the agent (pid %d) does not exit", pid)
}

// waitFor polls cond until it holds (true) or ctx ends (false).
func waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
