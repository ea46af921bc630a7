package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// ErrNotManager says the node cannot answer for the swarm's services: it is a worker or
// outside any swarm.
var ErrNotManager = errors.New("this node is not a swarm manager")

// ServiceStatuses returns every app service of the swarm (label skypanel.managed=true) with
// its tasks. It returns ErrNotManager on a node that is not a manager.
func (e *Engine) ServiceStatuses(ctx context.Context) ([]*agentv1.ServiceStatus, error) {
	svcs, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true")),
	})
	if err != nil {
		if notManager(err) {
			return nil, ErrNotManager
		}
		return nil, fmt.Errorf("list services: %w", err)
	}
	if len(svcs) == 0 {
		return nil, nil
	}
	f := filters.NewArgs()
	for _, s := range svcs {
		f.Add("service", s.ID)
	}
	tasks, err := e.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		if notManager(err) {
			return nil, ErrNotManager
		}
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	byService := map[string][]swarm.Task{}
	for _, t := range tasks {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	out := make([]*agentv1.ServiceStatus, 0, len(svcs))
	for _, s := range svcs {
		st := &agentv1.ServiceStatus{
			ServiceName:  s.Spec.Name,
			DeploymentId: s.Spec.Labels[LabelDeployment],
		}
		if s.PreviousSpec != nil {
			st.PreviousDeploymentId = s.PreviousSpec.Labels[LabelDeployment]
		}
		if s.UpdateStatus != nil {
			st.UpdateState = string(s.UpdateStatus.State)
			st.UpdateMessage = s.UpdateStatus.Message
		}
		if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			st.DesiredReplicas = int32(*r.Replicas)
		}
		for _, t := range byService[s.ID] {
			ts := &agentv1.TaskStatus{
				Id:           t.ID,
				Slot:         int32(t.Slot),
				SwarmNodeId:  t.NodeID,
				State:        string(t.Status.State),
				DesiredState: string(t.DesiredState),
				Error:        t.Status.Err,
			}
			if cs := t.Status.ContainerStatus; cs != nil {
				ts.ContainerId = cs.ContainerID
			}
			if c := t.Spec.ContainerSpec; c != nil {
				ts.DeploymentId = c.Labels[LabelDeployment]
			}
			if !t.Status.Timestamp.IsZero() {
				ts.UpdatedAt = timestamppb.New(t.Status.Timestamp)
			} else if !t.UpdatedAt.IsZero() {
				ts.UpdatedAt = timestamppb.New(t.UpdatedAt)
			}
			st.Tasks = append(st.Tasks, ts)
		}
		out = append(out, st)
	}
	return out, nil
}

func notManager(err error) bool {
	// The Engine answers 503 "This node is not a swarm manager..." on workers and nodes
	// outside a swarm.
	return errdefs.IsUnavailable(err) || strings.Contains(err.Error(), "not a swarm manager")
}

// ManagedContainer is a running app container on this node.
type ManagedContainer struct {
	ID          string
	ServiceName string
	TaskID      string
	Slot        int32
}

// ManagedContainers lists this node's running containers labelled skypanel.managed=true.
func (e *Engine) ManagedContainers(ctx context.Context) ([]ManagedContainer, error) {
	list, err := e.cli.ContainerList(ctx, container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"), filters.Arg("status", "running")),
	})
	if err != nil {
		return nil, fmt.Errorf("list app containers: %w", err)
	}
	out := make([]ManagedContainer, 0, len(list))
	for _, c := range list {
		mc := ManagedContainer{
			ID:          c.ID,
			ServiceName: c.Labels["com.docker.swarm.service.name"],
			TaskID:      c.Labels["com.docker.swarm.task.id"],
		}
		mc.Slot = slotFromTaskName(c.Labels["com.docker.swarm.task.name"], mc.ServiceName)
		out = append(out, mc)
	}
	return out, nil
}

// slotFromTaskName reads the slot from a replicated task's name, <service>.<slot>.<task id>.
func slotFromTaskName(taskName, service string) int32 {
	rest, ok := strings.CutPrefix(taskName, service+".")
	if !ok || service == "" {
		return 0
	}
	slot, _, _ := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(slot, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// ContainerSample is one reading of a container's resource counters.
type ContainerSample struct {
	Read time.Time
	// CPUTotal and SystemCPU are cumulative nanoseconds of CPU time: the container's and the
	// whole host's. PreCPUTotal and PreSystemCPU are the Engine's previous reading, zero when
	// it has none (a one-shot read has none).
	CPUTotal, SystemCPU       uint64
	PreCPUTotal, PreSystemCPU uint64
	OnlineCPUs                uint32
	// MemoryBytes is the memory in use without the page cache (as docker stats shows it).
	MemoryBytes int64
	NetRxBytes  int64
	NetTxBytes  int64
}

// ContainerSample reads a container's counters once, without the Engine's one-second wait
// for a second reading.
func (e *Engine) ContainerSample(ctx context.Context, id string) (ContainerSample, error) {
	r, err := e.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return ContainerSample{}, fmt.Errorf("container stats %s: %w", id, err)
	}
	defer r.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		return ContainerSample{}, fmt.Errorf("container stats %s: decode: %w", id, err)
	}
	s := ContainerSample{
		Read:         st.Read,
		CPUTotal:     st.CPUStats.CPUUsage.TotalUsage,
		SystemCPU:    st.CPUStats.SystemUsage,
		PreCPUTotal:  st.PreCPUStats.CPUUsage.TotalUsage,
		PreSystemCPU: st.PreCPUStats.SystemUsage,
		OnlineCPUs:   st.CPUStats.OnlineCPUs,
		MemoryBytes:  int64(memoryWithoutCache(st.MemoryStats)),
	}
	if s.OnlineCPUs == 0 {
		s.OnlineCPUs = uint32(len(st.CPUStats.CPUUsage.PercpuUsage))
	}
	for _, n := range st.Networks {
		s.NetRxBytes += int64(n.RxBytes)
		s.NetTxBytes += int64(n.TxBytes)
	}
	return s, nil
}

// memoryWithoutCache is what docker stats shows: usage less the inactive page cache.
func memoryWithoutCache(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage { // cgroup v1
		return m.Usage - v
	}
	if v, ok := m.Stats["inactive_file"]; ok && v < m.Usage { // cgroup v2
		return m.Usage - v
	}
	return m.Usage
}

// CPUPercent is the container's CPU use between two readings, in percent of one CPU (so
// up to 100 × online CPUs, as docker stats shows it); 0 when it cannot be told.
func CPUPercent(cpu, preCPU, system, preSystem uint64, onlineCPUs uint32) float64 {
	if cpu < preCPU || system <= preSystem || onlineCPUs == 0 {
		return 0
	}
	return float64(cpu-preCPU) / float64(system-preSystem) * float64(onlineCPUs) * 100
}

// WatchWorkloads calls changed whenever Docker's events show that app workloads may have
// changed: a service created, updated or removed, or an app container (label
// skypanel.managed=true) created, started, stopped, killed by the OOM killer, removed or
// changing health. It returns when ctx ends (nil) or the event stream fails.
func (e *Engine) WatchWorkloads(ctx context.Context, changed func()) error {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
	)
	for _, a := range []string{"create", "update", "remove", "start", "die", "destroy", "oom", "health_status"} {
		f.Add("event", a)
	}
	msgs, errs := e.cli.Events(ctx, events.ListOptions{Filters: f})
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("docker events: %w", err)
		case m := <-msgs:
			// Service events carry only the name; container events carry the labels.
			if m.Type == events.ContainerEventType && m.Actor.Attributes[LabelManaged] != "true" {
				continue
			}
			changed()
		}
	}
}
