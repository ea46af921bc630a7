// Package procstat reads, from Linux's /proc, what the benchmark commands measure of
// processes and of the machine: resident memory and CPU time.
package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc: 100 a second on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// Sample is one reading of a process's memory and CPU time.
type Sample struct {
	At  time.Time
	RSS int64         // resident set size, bytes (VmRSS)
	CPU time.Duration // user and system time so far
}

// Process reads a process's resident memory and CPU time.
func Process(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("sample process %d: VmRSS %q: %w", pid, v, err)
			}
			s.RSS = kb << 10
		}
	}
	f, err := stat(pid)
	if err != nil {
		return s, err
	}
	s.CPU, err = cpuOf(f)
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	return s, nil
}

// Share is the CPU time between two samples of a process as a percentage of one core.
func Share(a, b Sample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}

// CPU returns a process's user and system time so far (its own threads, not its
// children); 0 when it cannot be read.
func CPU(pid int) time.Duration {
	f, err := stat(pid)
	if err != nil {
		return 0
	}
	d, _ := cpuOf(f)
	return d
}

// Parent returns a process's parent; 0 when it cannot be read.
func Parent(pid int) int {
	f, err := stat(pid)
	if err != nil {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TreeCPU returns the CPU time of a process and of its children (a server's workers or
// backends), not of their children; 0 for pid 0.
func TreeCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total := CPU(pid)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err == nil && child != pid && Parent(child) == pid {
			total += CPU(child)
		}
	}
	return total
}

// Machine returns the time all the machine's cores spent busy and idle so far (waiting
// for I/O counts as idle), from /proc/stat.
func Machine() (busy, idle time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
	// already counted in user.
	for i := 1; i < len(fields) && i <= 8; i++ {
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		if i == 4 || i == 5 {
			idle += time.Duration(v) * clockTick
		} else {
			busy += time.Duration(v) * clockTick
		}
	}
	return busy, idle
}

// stat returns the fields of /proc/PID/stat after the command name, which is in
// parentheses and may hold spaces: f[0] is the state, f[1] the parent, f[11] and f[12] the
// user and system time.
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, fmt.Errorf("sample process %d: %w", pid, err)
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("sample process %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("sample process %d: short stat", pid)
	}
	return f, nil
}

func cpuOf(f []string) (time.Duration, error) {
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu times %q %q", f[11], f[12])
	}
	return time.Duration(ut+st) * clockTick, nil
}

// MachineInfo describes this machine for benchmark figures.
type MachineInfo struct {
	CPUs   int
	Model  string // of the first CPU, "unknown" when /proc does not say
	Memory string // total, as "23.5 GiB"
	Kernel string // release
}

// Describe reads the machine's CPUs, memory and kernel.
func Describe() MachineInfo {
	m := MachineInfo{CPUs: runtime.NumCPU(), Model: "unknown", Memory: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kib int64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kib); err == nil {
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
