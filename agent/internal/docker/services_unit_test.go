package docker

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func sampleApply() *agentv1.ServiceApply {
	return &agentv1.ServiceApply{
		ServiceName:  "app-7f3a",
		DeploymentId: "dep-42",
		Image:        "registry.example/acme/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Env:          []string{"PORT=8080", "MODE=production"},
		Command:      []string{"/app", "serve", ":8080"},
		Replicas:     3,
		CpuMillis:    500,
		MemoryBytes:  256 << 20,
		HealthCheck: &agentv1.WorkloadHealthCheck{
			Command: []string{"/app", "check"}, IntervalMs: 5000, TimeoutMs: 2000, Retries: 3, StartPeriodMs: 10000,
		},
		Network:           "org-acme",
		Labels:            map[string]string{"skypanel.managed": "true", "skypanel.app": "a1", "skypanel.organization": "o1"},
		RegistryAuth:      "eyJ1c2VybmFtZSI6InUifQ",
		ForceUpdate:       2,
		RollbackOnFailure: true,
		MonitorMs:         15000,
	}
}

// TestTheServiceSpecMatchesTheGoldenFile pins the whole rendered spec: dnsrr without
// published ports, start-first updates with rollback, limits equal to reservations, the
// deployment label on service and containers, and nothing that widens a tenant's reach.
func TestTheServiceSpecMatchesTheGoldenFile(t *testing.T) {
	spec, err := ServiceSpec(sampleApply())
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "service_spec.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("the spec differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestTheServiceSpecGrantsNothingBeyondTheSchema(t *testing.T) {
	spec, err := ServiceSpec(sampleApply())
	if err != nil {
		t.Fatal(err)
	}
	cs := spec.TaskTemplate.ContainerSpec
	switch {
	case cs.Privileges != nil, len(cs.CapabilityAdd) > 0, len(cs.Mounts) > 0, len(cs.Sysctls) > 0,
		cs.User != "", cs.Isolation != "", cs.Init != nil, len(cs.Ulimits) > 0:
		t.Fatalf("the container spec widens the workload's reach: %+v", cs)
	case spec.EndpointSpec == nil || len(spec.EndpointSpec.Ports) > 0 || spec.EndpointSpec.Mode != "dnsrr":
		t.Fatalf("endpoint spec %+v: want dnsrr without published ports", spec.EndpointSpec)
	case spec.TaskTemplate.Placement != nil || spec.TaskTemplate.Networks[0].Target != "org-acme":
		t.Fatalf("task template %+v", spec.TaskTemplate)
	}
}

func TestServiceSpecChecksItsInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*agentv1.ServiceApply)
		want   string
	}{
		{"a spec without the managed label is refused", func(r *agentv1.ServiceApply) { delete(r.Labels, "skypanel.managed") }, "skypanel.managed=true"},
		{"a managed label other than true is refused", func(r *agentv1.ServiceApply) { r.Labels["skypanel.managed"] = "yes" }, "skypanel.managed=true"},
		{"a name is required", func(r *agentv1.ServiceApply) { r.ServiceName = "" }, "service_name"},
		{"a deployment is required", func(r *agentv1.ServiceApply) { r.DeploymentId = "" }, "deployment_id"},
		{"an image is required", func(r *agentv1.ServiceApply) { r.Image = "" }, "image"},
		{"replicas cannot be negative", func(r *agentv1.ServiceApply) { r.Replicas = -1 }, "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleApply()
			tc.change(r)
			if _, err := ServiceSpec(r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestServiceSpecDefaults(t *testing.T) {
	r := sampleApply()
	r.HealthCheck = &agentv1.WorkloadHealthCheck{}
	r.CpuMillis, r.MemoryBytes, r.Network, r.RollbackOnFailure, r.Command = 0, 0, "", false, nil
	spec, err := ServiceSpec(r)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case spec.TaskTemplate.ContainerSpec.Healthcheck != nil:
		t.Fatal("an empty health check command overrode the image's")
	case spec.TaskTemplate.Resources != nil:
		t.Fatalf("resources without a plan: %+v", spec.TaskTemplate.Resources)
	case spec.TaskTemplate.Networks != nil:
		t.Fatalf("networks: %+v", spec.TaskTemplate.Networks)
	case spec.UpdateConfig.FailureAction != "pause":
		t.Fatalf("failure action without rollback: %q", spec.UpdateConfig.FailureAction)
	case spec.TaskTemplate.ContainerSpec.Command != nil:
		t.Fatal("an empty command replaced the image's")
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		name, in             string
		text, task, node, at string
		wantErr              bool
	}{
		{
			name: "a swarm line with details",
			in:   "2024-05-06T07:08:09.123456789Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello world\n",
			text: "hello world", task: "t1", node: "n1", at: "2024-05-06T07:08:09.123456789Z",
		},
		{
			name: "escaped detail values are unescaped and text keeps its spaces",
			in:   "2024-05-06T07:08:09Z com.docker.swarm.node.id=n%2F1,com.docker.swarm.task.id=t2   indented",
			text: "  indented", task: "t2", node: "n/1", at: "2024-05-06T07:08:09Z",
		},
		{name: "an empty line", in: "2024-05-06T07:08:09Z com.docker.swarm.task.id=t3 \n", text: "", task: "t3", at: "2024-05-06T07:08:09Z"},
		{name: "a line without time is an error", in: "hello", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLogLine([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %v", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.GetText() != tc.text || l.GetTaskId() != tc.task || l.GetSwarmNodeId() != tc.node ||
				l.GetAt().AsTime().Format(time.RFC3339Nano) != tc.at {
				t.Fatalf("parsed %v", l)
			}
		})
	}
}

func TestSlotFromTaskName(t *testing.T) {
	for _, tc := range []struct {
		name, service string
		want          int32
	}{
		{"app-1.3.x8k2", "app-1", 3},
		{"app.1.12.abc", "app.1", 12},
		{"app-1.x8k2", "app-1", 0},  // a global service's task: no slot
		{"other.2.abc", "app-1", 0}, // not this service
		{"", "", 0},
	} {
		if got := slotFromTaskName(tc.name, tc.service); got != tc.want {
			t.Errorf("slotFromTaskName(%q, %q) = %d, want %d", tc.name, tc.service, got, tc.want)
		}
	}
}

func TestCPUPercentAndMemory(t *testing.T) {
	if got := CPUPercent(3e9, 1e9, 20e9, 10e9, 2); got != 40 {
		t.Fatalf("2 s of CPU over 10 s of host time on 2 CPUs = %v %%, want 40", got)
	}
	if got := CPUPercent(1e9, 2e9, 20e9, 10e9, 2); got != 0 {
		t.Fatalf("a counter that went back (a restarted container) = %v, want 0", got)
	}
	if got := CPUPercent(1e9, 0, 10e9, 10e9, 2); got != 0 {
		t.Fatalf("no host time passed = %v, want 0", got)
	}
	for _, tc := range []struct {
		stats map[string]uint64
		want  uint64
	}{
		{map[string]uint64{"total_inactive_file": 30}, 70}, // cgroup v1
		{map[string]uint64{"inactive_file": 40}, 60},       // cgroup v2
		{map[string]uint64{"inactive_file": 400}, 100},     // nonsense: keep the usage
		{nil, 100},
	} {
		if got := memoryWithoutCache(container.MemoryStats{Usage: 100, Stats: tc.stats}); got != tc.want {
			t.Errorf("memory with %v = %d, want %d", tc.stats, got, tc.want)
		}
	}
}
