// Package host holds what the agent learns about its machine through gopsutil: the facts it
// sends when enrolling and the resource samples it sends with every report.
package host

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	ghost "github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	gnet "github.com/shirou/gopsutil/v4/net"
)

// Facts describe the machine.
type Facts struct {
	Hostname    string
	OS          string // for example "debian 12.5"
	Kernel      string
	Arch        string
	CPUs        int
	MemoryBytes int64
}

// ReadFacts reads the machine's facts. Missing pieces stay empty rather than failing
// enrollment.
func ReadFacts(ctx context.Context) Facts {
	f := Facts{Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	f.Hostname, _ = os.Hostname()
	if hi, err := ghost.InfoWithContext(ctx); err == nil {
		f.OS = strings.TrimSpace(hi.Platform + " " + hi.PlatformVersion)
		if f.OS == "" {
			f.OS = hi.OS
		}
		f.Kernel = hi.KernelVersion
		if hi.KernelArch != "" {
			f.Arch = hi.KernelArch
		}
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		f.MemoryBytes = int64(vm.Total)
	}
	return f
}

// Metrics are one sample of the machine's resource use.
type Metrics struct {
	CPUPercent       float64 // busy share of all CPUs since the previous sample, 0–100
	MemoryUsedBytes  int64
	MemoryTotalBytes int64
	// Disk covers / and, when it is another file system, Docker's data root.
	DiskUsedBytes  int64
	DiskTotalBytes int64
	// NetRxBytes and NetTxBytes are cumulative counters over all interfaces but loopback.
	NetRxBytes int64
	NetTxBytes int64
	Load1      float64
	Load5      float64
	Load15     float64
}

// Sampler takes Metrics. CPU use is measured between consecutive samples, so it covers the
// report interval rather than an instant.
type Sampler struct {
	mu   sync.Mutex
	prev *cpu.TimesStat
}

// Sample reads the machine's metrics. dataRoot is Docker's data root (may be empty).
func (s *Sampler) Sample(ctx context.Context, dataRoot string) (Metrics, error) {
	var m Metrics
	times, err := cpu.TimesWithContext(ctx, false)
	if err != nil || len(times) == 0 {
		return Metrics{}, fmt.Errorf("sample cpu: %v", err)
	}
	s.mu.Lock()
	if s.prev != nil {
		m.CPUPercent = BusyPercent(*s.prev, times[0])
	}
	s.prev = &times[0]
	s.mu.Unlock()

	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return Metrics{}, fmt.Errorf("sample memory: %w", err)
	}
	m.MemoryUsedBytes, m.MemoryTotalBytes = int64(vm.Used), int64(vm.Total)

	for _, p := range DiskPaths(dataRoot, deviceOf) {
		u, err := disk.UsageWithContext(ctx, p)
		if err != nil {
			return Metrics{}, fmt.Errorf("sample disk %s: %w", p, err)
		}
		m.DiskUsedBytes += int64(u.Used)
		m.DiskTotalBytes += int64(u.Total)
	}

	nics, err := gnet.IOCountersWithContext(ctx, true)
	if err != nil {
		return Metrics{}, fmt.Errorf("sample network: %w", err)
	}
	for _, n := range nics {
		if n.Name == "lo" {
			continue
		}
		m.NetRxBytes += int64(n.BytesRecv)
		m.NetTxBytes += int64(n.BytesSent)
	}

	if l, err := load.AvgWithContext(ctx); err == nil {
		m.Load1, m.Load5, m.Load15 = l.Load1, l.Load5, l.Load15
	}
	return m, nil
}

// BusyPercent is the share of CPU time spent busy between two cumulative samples.
func BusyPercent(a, b cpu.TimesStat) float64 {
	total := func(t cpu.TimesStat) float64 {
		// Guest time is already counted in user time on Linux.
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	dt := total(b) - total(a)
	if dt <= 0 {
		return 0
	}
	busy := dt - (idle(b) - idle(a))
	p := busy / dt * 100
	return min(100, max(0, p))
}

// DiskPaths returns "/" and, when it lives on another device, dataRoot. device reports a
// path's device number (ok false when the path cannot be read).
func DiskPaths(dataRoot string, device func(string) (uint64, bool)) []string {
	paths := []string{"/"}
	if dataRoot == "" || dataRoot == "/" {
		return paths
	}
	root, ok1 := device("/")
	dr, ok2 := device(dataRoot)
	if ok1 && ok2 && root != dr {
		paths = append(paths, dataRoot)
	}
	return paths
}

func deviceOf(path string) (uint64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true
}
