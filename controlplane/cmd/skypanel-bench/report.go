package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"time"

	"skypanel/shared/procstat"
)

// machine is what the figures were measured on.
type machine struct {
	procstat.MachineInfo
	date     time.Time
	postgres string
	// pgSettings are the server settings that move these figures most.
	pgSettings string
}

func describeMachine(ctx context.Context, cp *controlPlane) machine {
	m := machine{MachineInfo: procstat.Describe(), date: time.Now()}
	pool := cp.store.Pool()
	var version, fsync, sharedBuffers, maxConns string
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('shared_buffers'), current_setting('max_connections')`).Scan(&version, &fsync, &sharedBuffers, &maxConns); err == nil {
		m.postgres = "PostgreSQL " + version
		m.pgSettings = fmt.Sprintf("fsync=%s shared_buffers=%s max_connections=%s", fsync, sharedBuffers, maxConns)
	}
	return m
}

// report prints the figures as Markdown, ready for docs/benchmarks.md, then the errors.
func report(w io.Writer, cfg Config, m machine, res *result) {
	fmt.Fprintf(w, "\n## skypanel-bench %s\n\n", m.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %d CPUs (%s), %s RAM, Linux %s; %s on the same machine (%s); %s\n",
		m.CPUs, m.Model, m.Memory, m.Kernel, m.postgres, m.pgSettings, runtime.Version())
	mode := "closed loop (each client sends its next request when the previous one returns)"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s in all (latency counted from when each request was due)", cfg.Rate)
	}
	fmt.Fprintf(w, "- load: %d organizations, %d activity events, %d clients, %s; %s measured after %s warm-up; control plane pool %d connections\n",
		cfg.Orgs, cfg.Activity, cfg.Clients, mode, cfg.Duration, cfg.Warmup, res.usage.maxConns)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| rpc | count | errors | p50 | p90 | p99 | max | req/s | items/call | in handler (mean) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var all []time.Duration
	var allErrors int
	for k, op := range mix {
		st := res.ops[k]
		errs := 0
		for _, n := range st.errors {
			errs += n
		}
		all = append(all, st.latencies...)
		allErrors += errs
		items := "-"
		if len(st.latencies) > 0 {
			items = fmt.Sprintf("%.1f", float64(st.items)/float64(len(st.latencies)))
		}
		handler := "-"
		if h := res.usage.handler[op.procedure]; h[1] > 0 {
			handler = ms(time.Duration(h[0] / h[1] * float64(time.Second)))
		}
		fmt.Fprintf(w, "| %s | %s |\n", op.name, latencyRow(st.latencies, errs, res.elapsed, items, handler))
	}
	fmt.Fprintf(w, "| **all** | %s |\n", latencyRow(all, allErrors, res.elapsed, "-", "-"))

	u := res.usage
	fmt.Fprintln(w)
	if total := u.machineBusy + u.machineIdle; total > 0 {
		secs := total.Seconds() / float64(m.CPUs)
		share := func(cpu time.Duration) string {
			return fmt.Sprintf("%.0f%%", 100*float64(cpu)/float64(total))
		}
		fmt.Fprintf(w, "- CPU over %.0f s: machine %s busy; this process (control plane and clients) %s, postgres %s, other %s\n",
			secs, share(u.machineBusy), share(u.self), share(u.postgres), share(u.machineBusy-u.self-u.postgres))
		if n := len(all); n > 0 {
			perRequest := func(cpu time.Duration) string {
				return fmt.Sprintf("%.2f ms", float64(cpu.Microseconds())/1000/float64(n))
			}
			fmt.Fprintf(w, "- CPU per request: %s in all (this process %s, postgres %s)\n",
				perRequest(u.self+u.postgres), perRequest(u.self), perRequest(u.postgres))
		}
		if other := float64(u.machineBusy-u.self-u.postgres) / float64(total); other > 0.1 {
			fmt.Fprintf(w, "- **warning**: other processes took %.0f%% of the CPU: these figures understate the control plane; rerun on a quiet machine\n", 100*other)
		}
	}
	if u.acquires > 0 {
		avg := time.Duration(0)
		if u.emptyAcquires > 0 {
			avg = u.acquireWait / time.Duration(u.emptyAcquires)
		}
		fmt.Fprintf(w, "- database pool: %d acquires (%.0f/request), %.0f%% had to wait for a free connection, %s on average when they did\n",
			u.acquires, float64(u.acquires)/float64(max(len(all), 1)), 100*float64(u.emptyAcquires)/float64(u.acquires), ms(avg))
	}
	if allErrors > 0 {
		fmt.Fprintf(w, "\n%d requests failed:\n\n", allErrors)
		for k, op := range mix {
			texts := make([]string, 0, len(res.ops[k].errors))
			for e := range res.ops[k].errors {
				texts = append(texts, e)
			}
			sort.Slice(texts, func(i, j int) bool { return res.ops[k].errors[texts[i]] > res.ops[k].errors[texts[j]] })
			for _, e := range texts {
				fmt.Fprintf(w, "- %s: %d x %s\n", op.name, res.ops[k].errors[e], e)
			}
		}
	}
}

func latencyRow(d []time.Duration, errs int, elapsed time.Duration, items, handler string) string {
	if len(d) == 0 {
		return fmt.Sprintf("0 | %d | - | - | - | - | 0 | %s | %s", errs, items, handler)
	}
	slices.Sort(d)
	return fmt.Sprintf("%d | %d | %s | %s | %s | %s | %.0f | %s | %s", len(d), errs,
		ms(percentile(d, 50)), ms(percentile(d, 90)), ms(percentile(d, 99)), ms(d[len(d)-1]),
		float64(len(d))/elapsed.Seconds(), items, handler)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
