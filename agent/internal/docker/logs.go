package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Keys of the details Swarm adds to every service log line.
const (
	detailNodeID = "com.docker.swarm.node.id"
	detailTaskID = "com.docker.swarm.task.id"
)

// ServiceLogs reads the logs of the service req names and hands each line to emit, with
// its time, task, slot, swarm node and stream (stdout or stderr). It returns nil when the
// logs end (req.Follow false, or the service went away), the error emit returned, or
// ctx's error. It runs on a manager. req.Tail > 0 starts from the last Tail lines of each
// task, otherwise from the beginning (or req.Since).
func (e *Engine) ServiceLogs(ctx context.Context, req *agentv1.LogsFollow, emit func(*agentv1.AgentLogLine) error) error {
	name := req.GetServiceName()
	if name == "" {
		return errors.New("service logs: service_name is required")
	}
	opts := container.LogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: req.GetFollow(),
		Timestamps: true, Details: true, Tail: "all",
	}
	if req.GetTail() > 0 {
		opts.Tail = strconv.Itoa(int(req.GetTail()))
	}
	if s := req.GetSince(); s != nil && (s.GetSeconds() != 0 || s.GetNanos() != 0) {
		opts.Since = fmt.Sprintf("%d.%09d", s.GetSeconds(), s.GetNanos())
	}
	slots := &slotCache{e: e, slots: map[string]int32{}}
	if err := slots.load(ctx, name); err != nil {
		return fmt.Errorf("service logs %s: %w", name, err)
	}
	rc, err := e.cli.ServiceLogs(ctx, name, opts)
	if err != nil {
		return fmt.Errorf("service logs %s: %w", name, err)
	}
	defer rc.Close()
	stdout := &logWriter{ctx: ctx, stream: "stdout", slots: slots, emit: emit}
	stderr := &logWriter{ctx: ctx, stream: "stderr", slots: slots, emit: emit}
	// stdcopy writes each frame with one Write, and the Engine puts one log message in
	// each frame (docker service logs relies on the same).
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("service logs %s: %w", name, err)
	}
	return nil
}

// logWriter turns the frames of one stream into log lines.
type logWriter struct {
	ctx    context.Context
	stream string
	slots  *slotCache
	emit   func(*agentv1.AgentLogLine) error
}

func (w *logWriter) Write(frame []byte) (int, error) {
	line, err := parseLogLine(frame)
	if err != nil {
		return 0, err
	}
	line.Stream = w.stream
	line.Slot = w.slots.slot(w.ctx, line.GetTaskId())
	if err := w.emit(line); err != nil {
		return 0, err
	}
	return len(frame), nil
}

// parseLogLine reads "<RFC 3339 time> <k=v,k2=v2 details> <text>", what the Engine sends
// for service logs with timestamps and details.
func parseLogLine(frame []byte) (*agentv1.AgentLogLine, error) {
	frame = bytes.TrimSuffix(frame, []byte("\n"))
	parts := strings.SplitN(string(frame), " ", 3)
	if len(parts) < 2 {
		return nil, fmt.Errorf("parse log line %q: want time, details and text", truncateText(string(frame), 80))
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return nil, fmt.Errorf("parse log line time: %w", err)
	}
	line := &agentv1.AgentLogLine{At: timestamppb.New(at)}
	if len(parts) == 3 {
		line.Text = parts[2]
	}
	for _, kv := range strings.Split(parts[1], ",") {
		k, v, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		switch k {
		case detailNodeID:
			line.SwarmNodeId = v
		case detailTaskID:
			line.TaskId = v
		}
	}
	return line, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// slotCache maps a service's task ids to their slots, asking the Engine once per task.
type slotCache struct {
	e     *Engine
	mu    sync.Mutex
	slots map[string]int32
}

func (c *slotCache) load(ctx context.Context, service string) error {
	tasks, err := c.e.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range tasks {
		c.slots[t.ID] = int32(t.Slot)
	}
	return nil
}

func (c *slotCache) slot(ctx context.Context, taskID string) int32 {
	if taskID == "" {
		return 0
	}
	c.mu.Lock()
	s, ok := c.slots[taskID]
	c.mu.Unlock()
	if ok {
		return s
	}
	t, _, err := c.e.cli.TaskInspectWithRaw(ctx, taskID)
	if err != nil && !client.IsErrNotFound(err) {
		return 0 // asked again with the next line
	}
	c.mu.Lock()
	c.slots[taskID] = int32(t.Slot)
	c.mu.Unlock()
	return int32(t.Slot)
}

var _ io.Writer = (*logWriter)(nil)
