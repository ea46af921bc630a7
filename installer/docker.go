package installer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// defaultDockerHost is where a packaged Docker Engine listens.
const defaultDockerHost = "unix:///var/run/docker.sock"

// dockerStartTimeout bounds the wait for a started Engine to answer.
const dockerStartTimeout = 90 * time.Second

// ensureDocker makes sure a Docker Engine answers: the one at --docker-host (never installed
// or started by us), else the default one, installed with apt-get and started if need be.
func (in *Installer) ensureDocker(ctx context.Context) error {
	h := in.host
	if in.cfg.DockerHost != "" {
		if err := h.PingDocker(ctx, in.cfg.DockerHost); err != nil {
			return fmt.Errorf("docker: the Engine at --docker-host %s does not answer: %w", in.cfg.DockerHost, err)
		}
		in.say("docker: Engine answers at %s", in.cfg.DockerHost)
		return nil
	}
	if err := h.PingDocker(ctx, defaultDockerHost); err == nil {
		in.say("docker: Engine answers at %s", defaultDockerHost)
		return nil
	}

	if _, err := h.LookPath("dockerd"); err != nil {
		if in.cfg.SkipDockerInstall {
			return errors.New("docker: no Docker Engine (dockerd) and --skip-docker-install given")
		}
		if err := in.installDocker(ctx); err != nil {
			return err
		}
	}

	var exited <-chan error
	logPath := filepath.Join(in.cfg.DataDir, "dockerd.log")
	if in.systemd() {
		in.say("docker: starting docker.service")
		if out, err := h.Run(ctx, "systemctl", "enable", "--now", "docker.service"); err != nil {
			return fmt.Errorf("docker: systemctl enable --now docker: %w\n%s", err, strings.TrimSpace(string(out)))
		}
	} else {
		if err := h.MkdirAll(in.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		dockerd, err := h.LookPath("dockerd")
		if err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		pid, ex, err := h.Start(dockerd, nil, logPath)
		if err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		exited = ex
		in.say("docker: started dockerd in the background (pid %d, log %s); no systemd here, so it does not restart at boot", pid, logPath)
	}

	ctx, cancel := context.WithTimeout(ctx, dockerStartTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := h.PingDocker(ctx, defaultDockerHost)
		if err == nil {
			in.say("docker: Engine answers at %s", defaultDockerHost)
			return nil
		}
		select {
		case exitErr := <-exited:
			return fmt.Errorf("docker: dockerd exited (%v); see %s", exitErr, logPath)
		case <-ctx.Done():
			return fmt.Errorf("docker: the Engine did not answer within %s: %w", dockerStartTimeout, err)
		case <-tick.C:
		}
	}
}

func (in *Installer) installDocker(ctx context.Context) error {
	h := in.host
	if _, err := h.LookPath("apt-get"); err != nil {
		return errors.New("docker: no Docker Engine and no apt-get to install one; install Docker Engine and run setup-worker again")
	}
	in.say("docker: installing docker.io with apt-get (a few minutes)")
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if out, err := h.Run(ctx, "apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("docker: apt-get update: %w\n%s", err, tail(out))
	}
	if out, err := h.Run(ctx, "apt-get", "install", "-y", "-q", "docker.io"); err != nil {
		return fmt.Errorf("docker: apt-get install docker.io: %w\n%s", err, tail(out))
	}
	if _, err := h.LookPath("dockerd"); err != nil {
		return errors.New("docker: docker.io is installed but dockerd is still missing")
	}
	return nil
}

// tail is the end of a command's output, enough to see why it failed.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
