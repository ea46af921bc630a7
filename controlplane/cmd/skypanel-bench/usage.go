package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"skypanel/controlplane/internal/benchcli"
	"skypanel/shared/procstat"
)

// usage is a snapshot of counters whose difference over the measured phase says where the
// time went: CPU by whom, waits for a database connection, and time inside the handlers.
type usage struct {
	at time.Time
	// CPU time: the whole machine busy and idle, this process (control plane and clients),
	// and the processes of the Postgres server the control plane uses (not other clusters
	// on the machine).
	machineBusy, machineIdle, self, postgres time.Duration
	// Pool counters of the control plane's store.
	acquires, emptyAcquires int64
	acquireWait             time.Duration
	maxConns                int32
	// handler holds, by procedure, the seconds and count the server's RPC histogram summed
	// (time in the interceptors and handler, without HTTP and encoding).
	handler map[string][2]float64
}

func takeUsage(ctx context.Context, cp *controlPlane) usage {
	u := usage{at: time.Now(), handler: map[string][2]float64{}}
	u.machineBusy, u.machineIdle = procstat.Machine()
	u.self = procstat.CPU(os.Getpid())
	u.postgres = postgresCPU(ctx, cp)
	st := cp.store.Pool().Stat()
	u.acquires, u.emptyAcquires, u.acquireWait, u.maxConns = st.AcquireCount(), st.EmptyAcquireCount(), st.EmptyAcquireWaitTime(), st.MaxConns()
	u.handler = handlerSeconds(ctx, cp.url+"/metrics")
	return u
}

// since is the change from an earlier snapshot.
func (u usage) since(b usage) usage {
	d := usage{
		at:          b.at,
		machineBusy: u.machineBusy - b.machineBusy, machineIdle: u.machineIdle - b.machineIdle,
		self: u.self - b.self, postgres: u.postgres - b.postgres,
		acquires: u.acquires - b.acquires, emptyAcquires: u.emptyAcquires - b.emptyAcquires,
		acquireWait: u.acquireWait - b.acquireWait, maxConns: u.maxConns,
		handler: map[string][2]float64{},
	}
	for proc, v := range u.handler {
		w := b.handler[proc]
		d.handler[proc] = [2]float64{v[0] - w[0], v[1] - w[1]}
	}
	return d
}

// postgresCPU sums the CPU time of the Postgres server the control plane uses: its
// postmaster and the postmaster's children (backends and background processes). Other
// Postgres servers on the machine (other people's tests) count as "other".
func postgresCPU(ctx context.Context, cp *controlPlane) time.Duration {
	return procstat.TreeCPU(benchcli.PostgresServer(ctx, cp.store.Pool()))
}

// handlerSeconds reads skypanel_rpc_duration_seconds' sum and count by procedure from the
// server's Prometheus endpoint.
func handlerSeconds(ctx context.Context, url string) map[string][2]float64 {
	out := map[string][2]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var idx int
		switch {
		case strings.HasPrefix(line, "skypanel_rpc_duration_seconds_sum{"):
			idx = 0
		case strings.HasPrefix(line, "skypanel_rpc_duration_seconds_count{"):
			idx = 1
		default:
			continue
		}
		_, labels, _ := strings.Cut(line, `procedure="`)
		proc, value, ok := strings.Cut(labels, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		e := out[proc]
		e[idx] = v
		out[proc] = e
	}
	return out
}
