// Package docker holds the Docker Engine calls the agent makes, through the Engine API
// client (never a shell): engine and swarm facts for reports, swarm init, join and leave,
// node update and removal on a manager, disk usage, the apps' overlay networks and Swarm
// services, their logs, and the state and resource use of their tasks. The commands' calls
// are idempotent, so a command the control plane repeats after a lost acknowledgement has no
// second effect.
package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// DefaultListenAddr is where Swarm listens for cluster management unless told otherwise.
const DefaultListenAddr = "0.0.0.0:2377"

// Engine talks to one Docker Engine.
type Engine struct {
	cli *client.Client
}

// API is the Engine's Docker client, for packages that drive the Engine themselves (the
// edge's container).
func (e *Engine) API() *client.Client { return e.cli }

// New returns an Engine for host (for example unix:///var/run/docker.sock); an empty host
// means DOCKER_HOST or the platform default. The API version is negotiated, so the agent
// works with Engine 20.10 (API 1.41) as well as current Engines.
func New(host string) (*Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Engine{cli: cli}, nil
}

// Negotiate settles the API version now, before the agent's parts call the Engine at the
// same time: the client negotiates on its first call otherwise, and concurrent first calls
// race on its version. An Engine that does not answer yet is negotiated with later, on first
// use.
func (e *Engine) Negotiate(ctx context.Context) { e.cli.NegotiateAPIVersion(ctx) }

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Info is what the Engine says about itself and its swarm membership.
type Info struct {
	EngineVersion string
	OS            string
	Kernel        string
	DataRoot      string
	// SwarmNodeID is empty outside a swarm.
	SwarmNodeID string
	// SwarmState is the local node state: inactive, pending, active, error or locked.
	SwarmState string
	// SwarmError is the Engine's error text when SwarmState is error.
	SwarmError string
	// Manager is true when this node is a reachable swarm manager.
	Manager bool
	// Availability is the node's availability (active, pause, drain); only managers can
	// read it, so it is empty on workers.
	Availability      string
	ContainersRunning int
	ContainersTotal   int
	// TasksRunning counts running swarm task containers on this node.
	TasksRunning int
}

// Info returns the Engine's facts.
func (e *Engine) Info(ctx context.Context) (Info, error) {
	si, err := e.cli.Info(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("docker info: %w", err)
	}
	info := Info{
		EngineVersion:     si.ServerVersion,
		OS:                si.OperatingSystem,
		Kernel:            si.KernelVersion,
		DataRoot:          si.DockerRootDir,
		SwarmNodeID:       si.Swarm.NodeID,
		SwarmState:        string(si.Swarm.LocalNodeState),
		SwarmError:        si.Swarm.Error,
		Manager:           si.Swarm.ControlAvailable,
		ContainersRunning: si.ContainersRunning,
		ContainersTotal:   si.Containers,
	}
	if info.Manager && info.SwarmNodeID != "" {
		n, _, err := e.cli.NodeInspectWithRaw(ctx, info.SwarmNodeID)
		if err != nil {
			return Info{}, fmt.Errorf("docker info: inspect own node: %w", err)
		}
		info.Availability = string(n.Spec.Availability)
	}
	if info.SwarmState == string(swarm.LocalNodeStateActive) {
		// Task containers carry this label on every node, manager or worker.
		tasks, err := e.cli.ContainerList(ctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task.id"), filters.Arg("status", "running")),
		})
		if err != nil {
			return Info{}, fmt.Errorf("docker info: list task containers: %w", err)
		}
		info.TasksRunning = len(tasks)
	}
	return info, nil
}

// SwarmTokens identify a swarm and let other nodes join it.
type SwarmTokens struct {
	SwarmID          string `json:"swarm_id"`
	SwarmNodeID      string `json:"swarm_node_id"`
	ManagerJoinToken string `json:"manager_join_token"`
	WorkerJoinToken  string `json:"worker_join_token"`
}

// SwarmInit makes this node the first manager of a new swarm. On a node that already
// manages a swarm it changes nothing and returns that swarm's ids and tokens.
func (e *Engine) SwarmInit(ctx context.Context, advertiseAddr, listenAddr string) (SwarmTokens, error) {
	si, err := e.cli.Info(ctx)
	if err != nil {
		return SwarmTokens{}, fmt.Errorf("swarm init: docker info: %w", err)
	}
	switch si.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !si.Swarm.ControlAvailable {
			return SwarmTokens{}, fmt.Errorf("swarm init: this node is already a worker of another swarm (node %s); it must leave first", si.Swarm.NodeID)
		}
		return e.tokens(ctx, si.Swarm.NodeID)
	case swarm.LocalNodeStateInactive:
	default:
		return SwarmTokens{}, fmt.Errorf("swarm init: the node's swarm state is %s %s", si.Swarm.LocalNodeState, si.Swarm.Error)
	}
	if listenAddr == "" {
		listenAddr = DefaultListenAddr
	}
	nodeID, err := e.cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: listenAddr, AdvertiseAddr: advertiseAddr})
	if err != nil {
		return SwarmTokens{}, fmt.Errorf("swarm init: %w", err)
	}
	return e.tokens(ctx, nodeID)
}

func (e *Engine) tokens(ctx context.Context, nodeID string) (SwarmTokens, error) {
	sw, err := e.cli.SwarmInspect(ctx)
	if err != nil {
		return SwarmTokens{}, fmt.Errorf("swarm inspect: %w", err)
	}
	return SwarmTokens{
		SwarmID:          sw.ID,
		SwarmNodeID:      nodeID,
		ManagerJoinToken: sw.JoinTokens.Manager,
		WorkerJoinToken:  sw.JoinTokens.Worker,
	}, nil
}

// SwarmJoin joins an existing swarm and returns this node's swarm id. A node that is
// already in a swarm changes nothing and returns its id.
func (e *Engine) SwarmJoin(ctx context.Context, remoteAddrs []string, joinToken, advertiseAddr, listenAddr string) (string, error) {
	if len(remoteAddrs) == 0 || joinToken == "" {
		return "", errors.New("swarm join: the managers' addresses and a join token are required")
	}
	si, err := e.cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("swarm join: docker info: %w", err)
	}
	switch si.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		return si.Swarm.NodeID, nil
	case swarm.LocalNodeStateInactive:
	case swarm.LocalNodeStatePending:
		// An earlier join is still in progress (the Engine keeps trying): wait for it.
		return e.waitActive(ctx)
	default:
		return "", fmt.Errorf("swarm join: the node's swarm state is %s %s", si.Swarm.LocalNodeState, si.Swarm.Error)
	}
	if listenAddr == "" {
		listenAddr = DefaultListenAddr
	}
	if err := e.cli.SwarmJoin(ctx, swarm.JoinRequest{
		ListenAddr:    listenAddr,
		AdvertiseAddr: advertiseAddr,
		RemoteAddrs:   remoteAddrs,
		JoinToken:     joinToken,
	}); err != nil {
		return "", fmt.Errorf("swarm join: %w", err)
	}
	return e.waitActive(ctx)
}

func (e *Engine) waitActive(ctx context.Context) (string, error) {
	for {
		si, err := e.cli.Info(ctx)
		if err != nil {
			return "", fmt.Errorf("swarm join: docker info: %w", err)
		}
		switch si.Swarm.LocalNodeState {
		case swarm.LocalNodeStateActive:
			return si.Swarm.NodeID, nil
		case swarm.LocalNodeStatePending:
		default:
			return "", fmt.Errorf("swarm join: the node's swarm state is %s %s", si.Swarm.LocalNodeState, si.Swarm.Error)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("swarm join: still pending: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// SwarmLeave leaves the swarm; a node outside any swarm has nothing to do.
func (e *Engine) SwarmLeave(ctx context.Context, force bool) error {
	si, err := e.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("swarm leave: docker info: %w", err)
	}
	if si.Swarm.LocalNodeState == swarm.LocalNodeStateInactive {
		return nil
	}
	if err := e.cli.SwarmLeave(ctx, force); err != nil {
		return fmt.Errorf("swarm leave: %w", err)
	}
	return nil
}

// Availabilities are the values NodeUpdate accepts.
var Availabilities = []string{string(swarm.NodeAvailabilityActive), string(swarm.NodeAvailabilityPause), string(swarm.NodeAvailabilityDrain)}

// NodeUpdate sets a swarm node's availability (empty keeps it) and replaces its labels with
// the given set: the control plane always sends a node's whole label set, so a label an admin
// deleted goes away. It runs on a manager and retries when the node changed between read and
// write.
func (e *Engine) NodeUpdate(ctx context.Context, nodeID, availability string, labels map[string]string) error {
	if nodeID == "" {
		return errors.New("node update: the swarm node id is required")
	}
	if availability != "" && !slices.Contains(Availabilities, availability) {
		return fmt.Errorf("node update: availability %q: want one of %v", availability, Availabilities)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var n swarm.Node
		n, _, err = e.cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("node update %s: %w", nodeID, err)
		}
		spec := n.Spec
		changed := false
		if availability != "" && spec.Availability != swarm.NodeAvailability(availability) {
			spec.Availability = swarm.NodeAvailability(availability)
			changed = true
		}
		if !maps.Equal(spec.Labels, labels) {
			spec.Labels = maps.Clone(labels)
			changed = true
		}
		if !changed {
			return nil
		}
		err = e.cli.NodeUpdate(ctx, nodeID, n.Version, spec)
		if err == nil {
			return nil
		}
		if !isOutOfSequence(err) {
			break
		}
	}
	return fmt.Errorf("node update %s: %w", nodeID, err)
}

func isOutOfSequence(err error) bool {
	// swarmkit's "update out of sequence" comes back as a plain error text.
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "out of sequence")
}

// NodeRemove removes a node from the swarm's node list (on a manager). A node that is not
// there is already removed.
func (e *Engine) NodeRemove(ctx context.Context, nodeID string, force bool) error {
	if nodeID == "" {
		return errors.New("node remove: the swarm node id is required")
	}
	err := e.cli.NodeRemove(ctx, nodeID, swarm.NodeRemoveOptions{Force: force})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("node remove %s: %w", nodeID, err)
	}
	return nil
}

// DiskUsage is what images and volumes take on the Engine's disk.
type DiskUsage struct {
	ImagesBytes  int64
	VolumesBytes int64
}

// DiskUsage asks the Engine for its disk use. It can be slow on hosts with many volumes;
// callers cache it.
func (e *Engine) DiskUsage(ctx context.Context) (DiskUsage, error) {
	du, err := e.cli.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.ImageObject, types.VolumeObject}})
	if err != nil {
		return DiskUsage{}, fmt.Errorf("docker disk usage: %w", err)
	}
	out := DiskUsage{ImagesBytes: du.LayersSize}
	for _, v := range du.Volumes {
		if v != nil && v.UsageData != nil && v.UsageData.Size > 0 {
			out.VolumesBytes += v.UsageData.Size
		}
	}
	return out, nil
}
