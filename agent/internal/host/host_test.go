package host

import (
	"context"
	"slices"
	"testing"

	"github.com/shirou/gopsutil/v4/cpu"
)

func TestBusyPercentIsTheBusyShareBetweenSamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b cpu.TimesStat
		want float64
	}{
		{"all idle is zero", cpu.TimesStat{Idle: 100}, cpu.TimesStat{Idle: 200}, 0},
		{"a quarter busy", cpu.TimesStat{User: 10, Idle: 90}, cpu.TimesStat{User: 35, Idle: 165}, 25},
		{"iowait counts as idle", cpu.TimesStat{}, cpu.TimesStat{System: 50, Iowait: 50}, 50},
		{"no time passed is zero", cpu.TimesStat{User: 5}, cpu.TimesStat{User: 5}, 0},
		{"counters going backwards is zero", cpu.TimesStat{User: 50, Idle: 50}, cpu.TimesStat{User: 10, Idle: 10}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BusyPercent(tc.a, tc.b); got != tc.want {
				t.Fatalf("BusyPercent = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiskPathsAddsTheDataRootOnlyOnAnotherDevice(t *testing.T) {
	devs := map[string]uint64{"/": 1, "/var/lib/docker": 1, "/srv/docker": 2}
	dev := func(p string) (uint64, bool) { d, ok := devs[p]; return d, ok }
	for _, tc := range []struct {
		root string
		want []string
	}{
		{"", []string{"/"}},
		{"/var/lib/docker", []string{"/"}},
		{"/srv/docker", []string{"/", "/srv/docker"}},
		{"/missing", []string{"/"}},
	} {
		if got := DiskPaths(tc.root, dev); !slices.Equal(got, tc.want) {
			t.Errorf("DiskPaths(%q) = %v, want %v", tc.root, got, tc.want)
		}
	}
}

func TestSampleReadsThisMachine(t *testing.T) {
	var s Sampler
	ctx := context.Background()
	if _, err := s.Sample(ctx, ""); err != nil {
		t.Fatal(err)
	}
	m, err := s.Sample(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryTotalBytes <= 0 || m.DiskTotalBytes <= 0 || m.CPUPercent < 0 || m.CPUPercent > 100 {
		t.Fatalf("sample = %+v", m)
	}
	f := ReadFacts(ctx)
	if f.Hostname == "" || f.CPUs <= 0 || f.MemoryBytes <= 0 || f.Arch == "" {
		t.Fatalf("facts = %+v", f)
	}
}
