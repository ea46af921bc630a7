package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"skypanel/shared/procstat"
)

// sampleEvery is how often the real agent and the exporter are sampled, and the exporter
// scraped: the agent's report interval.
const sampleEvery = 10 * time.Second

// runReal runs one real agent (reporting every 10 s to its own control plane) and
// prometheus-node-exporter (scraped every 10 s) for cfg.Duration, sampling both from /proc.
func runReal(ctx context.Context, cfg Config, b bins, work string, stdout, stderr io.Writer) error {
	if _, err := os.Stat(cfg.NodeExporter); err != nil {
		return fmt.Errorf("%w (apt-get install -y prometheus-node-exporter)", err)
	}
	dockerNote := "the machine's Docker Engine answers"
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		dockerNote = "no Docker Engine answers: the agent's Docker state calls fail fast"
	}
	cp, err := startControlPlane(ctx, cfg, b, work, "controlplane-real")
	if err != nil {
		return err
	}
	defer cp.stop()
	// A worker of a cluster without a manager: the control plane queues it nothing, so the
	// agent does its steady work only (reports, keepalives) and never touches the swarm.
	clusterID, err := cp.createCluster(ctx, "bench-real")
	if err != nil {
		return err
	}
	token, err := cp.createToken(ctx, clusterID, 1)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(work, "agent")
	enroll := exec.CommandContext(ctx, b.agent, "enroll", "--agent-url", cp.agentURL, "--advertise-addr", "127.0.0.1", "--data-dir", dataDir)
	enroll.Env = append(os.Environ(), "SKYPANEL_AGENT_TOKEN="+token)
	if out, err := enroll.CombinedOutput(); err != nil {
		return fmt.Errorf("enroll the agent: %w\n%s", err, out)
	}

	agentLog := filepath.Join(work, "agent.log")
	agent, err := startProcess(b.agent, []string{"run", "--data-dir", dataDir, "--report-interval", sampleEvery.String()}, agentLog)
	if err != nil {
		return err
	}
	defer agent.stop()

	addr := "127.0.0.1:9100"
	if ln, err := net.Listen("tcp", addr); err != nil {
		if addr, err = freeAddr(); err != nil {
			return err
		}
	} else {
		ln.Close()
	}
	exporter, err := startProcess(cfg.NodeExporter, []string{"--web.listen-address=" + addr}, filepath.Join(work, "node-exporter.log"))
	if err != nil {
		return err
	}
	defer exporter.stop()
	var scrapes, scrapeErrs atomic.Int64
	scrape := func() {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			scrapeErrs.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			scrapeErrs.Add(1)
			return
		}
		scrapes.Add(1)
	}

	fmt.Fprintf(stderr, "real agent (pid %d) and node exporter (pid %d at %s): settling %s, then sampling every %s for %s\n",
		agent.pid(), exporter.pid(), addr, sampleEvery, sampleEvery, cfg.Duration)
	if err := sleep(ctx, sampleEvery); err != nil {
		return err
	}
	procs := []*process{agent, exporter}
	first := make([]procstat.Sample, 2)
	last := make([]procstat.Sample, 2)
	sumRSS := make([]int64, 2)
	maxRSS := make([]int64, 2)
	samples := 0
	take := func() error {
		for i, p := range procs {
			s, err := procstat.Process(p.pid())
			if err != nil {
				return fmt.Errorf("%s exited? %w", filepath.Base(p.cmd.Path), err)
			}
			if samples == 0 {
				first[i] = s
			}
			last[i] = s
			sumRSS[i] += s.RSS
			maxRSS[i] = max(maxRSS[i], s.RSS)
		}
		samples++
		return nil
	}
	scrape()
	if err := take(); err != nil {
		return err
	}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for end := time.Now().Add(cfg.Duration); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		scrape()
		if err := take(); err != nil {
			return err
		}
	}

	logBytes, _ := os.ReadFile(agentLog)
	complaints := bytes.Count(logBytes, []byte(`"level":"ERROR"`)) + bytes.Count(logBytes, []byte(`"level":"WARN"`))
	fmt.Fprintf(stdout, "\n## One real agent next to prometheus-node-exporter, %s, sampled every %s (%d samples); %s\n\n",
		last[0].At.Sub(first[0].At).Round(time.Second), sampleEvery, samples, dockerNote)
	fmt.Fprintln(stdout, "| process | average RSS | max RSS | CPU (% of one core) |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|")
	names := []string{"skypanel-agent (report every 10 s)", "prometheus-node-exporter (scraped every 10 s)"}
	for i := range procs {
		fmt.Fprintf(stdout, "| %s | %s | %s | %.3f %% |\n", names[i], mib(sumRSS[i]/int64(samples)), mib(maxRSS[i]), procstat.Share(first[i], last[i]))
	}
	agentRSS, exporterRSS := sumRSS[0]/int64(samples), sumRSS[1]/int64(samples)
	agentCPU := procstat.Share(first[0], last[0])
	fmt.Fprintf(stdout, "\nGoal: agent RSS at most the exporter's (%s vs %s: %s) and CPU under 0.5 %% of one core (%.3f %%: %s).\n",
		mib(agentRSS), mib(exporterRSS), yesNo(agentRSS <= exporterRSS), agentCPU, yesNo(agentCPU < 0.5))
	fmt.Fprintf(stdout, "Exporter scrapes: %d ok, %d failed. Agent log warnings and errors: %d.\n", scrapes.Load(), scrapeErrs.Load(), complaints)
	return nil
}

func yesNo(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// process is a started child process.
type process struct {
	cmd    *exec.Cmd
	exited chan error
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// startProcess starts name with its output in logPath and fails if it exits within a second.
func startProcess(name string, args []string, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		out, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("start %s: exited right away (%v):\n%s", name, err, out)
	case <-time.After(time.Second):
	}
	return &process{cmd: cmd, exited: exited}, nil
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}
