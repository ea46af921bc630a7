package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"skypanel/shared/procstat"
)

type machine struct {
	procstat.MachineInfo
	date                 time.Time
	postgres, pgSettings string
}

func (b *bench) describeMachine(ctx context.Context) machine {
	m := machine{MachineInfo: procstat.Describe(), date: time.Now()}
	var version, fsync, syncCommit, sharedBuffers string
	if err := b.st.Pool().QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &sharedBuffers); err == nil {
		m.postgres = "PostgreSQL " + version
		m.pgSettings = fmt.Sprintf("fsync=%s synchronous_commit=%s shared_buffers=%s", fsync, syncCommit, sharedBuffers)
	}
	return m
}

// report prints the figures as Markdown, ready for docs/benchmarks.md.
func report(w io.Writer, cfg Config, m machine, rounds []round) {
	fmt.Fprintf(w, "\n### skypanel-billingbench %s\n\n", m.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %d CPUs (%s), %s RAM, Linux %s; %s on the same machine (%s); %s\n",
		m.CPUs, m.Model, m.Memory, m.Kernel, m.postgres, m.pgSettings, runtime.Version())
	fmt.Fprintf(w, "- load: %d resources running in the period across %d organizations (80%% all hour, 10%% starting and 10%% stopping in it, 1%% with a price override); %d resources per transaction\n",
		cfg.Resources, cfg.Orgs, cfg.BatchSize)
	fmt.Fprintf(w, "- metering: %d batches at once (billing.Options.Workers)\n\n", cfg.Workers)
	fmt.Fprintln(w, "| round | runs in table | charges | batches | metering time | charges/s | charging statements (sum) | commits (sum) | books check |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var best time.Duration
	for i, r := range rounds {
		e := r.report.Elapsed
		if best == 0 || e < best {
			best = e
		}
		fmt.Fprintf(w, "| %d | %d | %d | %d | **%s** | %.0f | %s | %s | %s |\n", i+1, r.runs, r.report.Charges,
			r.report.Batches, e.Round(time.Millisecond), float64(r.report.Charges)/e.Seconds(),
			r.charge.Round(time.Millisecond), r.commit.Round(time.Millisecond), r.check.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\nGoal: under 5 s for %d resources; best round %s (%s).\n", cfg.Resources, best.Round(time.Millisecond),
		map[bool]string{true: "met", false: "not met"}[best < 5*time.Second])
}
