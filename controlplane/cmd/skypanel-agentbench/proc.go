package main

import (
	"fmt"
	"runtime"

	"skypanel/shared/procstat"
)

// machine describes this machine for the figures: cores, CPU model, memory, kernel.
func machine() string {
	m := procstat.Describe()
	return fmt.Sprintf("machine: %d cores (%s), %s memory, Linux %s, %s", m.CPUs, m.Model, m.Memory, m.Kernel, runtime.Version())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
