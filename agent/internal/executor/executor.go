// Package executor holds the mapping from each command the control plane sends to the
// Docker Engine, gossip and edge calls that carry it out, and the JSON output each command
// acknowledges with (docs/agents-contract.md, "Command outputs"). LogsFollow is not among
// them: it is ephemeral and the session runs it.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/gossip"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Engine is the part of the Docker Engine the commands use.
type Engine interface {
	SwarmInit(ctx context.Context, advertiseAddr, listenAddr string) (docker.SwarmTokens, error)
	SwarmJoin(ctx context.Context, remoteAddrs []string, joinToken, advertiseAddr, listenAddr string) (string, error)
	SwarmLeave(ctx context.Context, force bool) error
	NodeUpdate(ctx context.Context, nodeID, availability string, labels map[string]string) error
	NodeRemove(ctx context.Context, nodeID string, force bool) error
	NetworkEnsure(ctx context.Context, name string, labels map[string]string, encrypted bool) (docker.NetworkResult, error)
	ServiceApply(ctx context.Context, req *agentv1.ServiceApply) (docker.ServiceResult, error)
	ServiceRemove(ctx context.Context, name string) (docker.ServiceRemoveResult, error)
}

// Edge applies an edge proxy configuration on an edge node.
type Edge interface {
	Configure(ctx context.Context, cfg *agentv1.EdgeConfigure) error
}

// ErrNotEdge is the error of edge_configure on an agent without an edge.
var ErrNotEdge = errors.New("edge_configure: this node is not an edge node")

// Gossip takes a new cluster gossip configuration.
type Gossip interface {
	Apply(ctx context.Context, cfg gossip.Config) error
}

// Executor runs commands.
type Executor struct {
	engine        Engine
	gossip        Gossip
	advertiseAddr string

	// Commands run one at a time (the session's order), but SetEdge may come from
	// elsewhere.
	mu          sync.Mutex
	edge        Edge
	edgeVersion int64 // the last EdgeConfigure version applied; 0 before any
}

// New returns an Executor. advertiseAddr is the node's own address, used when a swarm
// command names none.
func New(engine Engine, g Gossip, advertiseAddr string) *Executor {
	return &Executor{engine: engine, gossip: g, advertiseAddr: advertiseAddr}
}

// SetEdge gives the executor the node's edge proxy, which edge_configure commands
// configure; without one they fail with ErrNotEdge.
func (x *Executor) SetEdge(e Edge) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.edge = e
}

// Kind names a command's kind as the contract does (swarm_init, ...).
func Kind(cmd *agentv1.Command) string {
	switch cmd.GetKind().(type) {
	case *agentv1.Command_SwarmInit:
		return "swarm_init"
	case *agentv1.Command_SwarmJoin:
		return "swarm_join"
	case *agentv1.Command_SwarmLeave:
		return "swarm_leave"
	case *agentv1.Command_NodeUpdate:
		return "node_update"
	case *agentv1.Command_NodeRemove:
		return "node_remove"
	case *agentv1.Command_GossipConfig:
		return "gossip_config"
	case *agentv1.Command_NetworkEnsure:
		return "network_ensure"
	case *agentv1.Command_ServiceApply:
		return "service_apply"
	case *agentv1.Command_ServiceRemove:
		return "service_remove"
	case *agentv1.Command_EdgeConfigure:
		return "edge_configure"
	case *agentv1.Command_LogsFollow:
		return "logs_follow"
	case nil:
		return "none"
	}
	return "unknown"
}

// Execute runs one command and returns its output as JSON.
func (x *Executor) Execute(ctx context.Context, cmd *agentv1.Command) (string, error) {
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_SwarmInit:
		tokens, err := x.engine.SwarmInit(ctx, x.or(k.SwarmInit.GetAdvertiseAddr()), k.SwarmInit.GetListenAddr())
		if err != nil {
			return "", err
		}
		return output(tokens)
	case *agentv1.Command_SwarmJoin:
		j := k.SwarmJoin
		id, err := x.engine.SwarmJoin(ctx, j.GetRemoteAddrs(), j.GetJoinToken(), x.or(j.GetAdvertiseAddr()), j.GetListenAddr())
		if err != nil {
			return "", err
		}
		return output(struct {
			SwarmNodeID string `json:"swarm_node_id"`
		}{id})
	case *agentv1.Command_SwarmLeave:
		return "{}", x.engine.SwarmLeave(ctx, k.SwarmLeave.GetForce())
	case *agentv1.Command_NodeUpdate:
		u := k.NodeUpdate
		return "{}", x.engine.NodeUpdate(ctx, u.GetSwarmNodeId(), u.GetAvailability(), u.GetLabels())
	case *agentv1.Command_NodeRemove:
		return "{}", x.engine.NodeRemove(ctx, k.NodeRemove.GetSwarmNodeId(), k.NodeRemove.GetForce())
	case *agentv1.Command_GossipConfig:
		if x.gossip == nil {
			return "", errors.New("gossip_config: gossip is not running on this agent")
		}
		g := k.GossipConfig
		return "{}", x.gossip.Apply(ctx, gossip.Config{Key: g.GetKey(), Label: g.GetLabel(), Peers: g.GetPeers(), Port: int(g.GetPort())})
	case *agentv1.Command_NetworkEnsure:
		n := k.NetworkEnsure
		res, err := x.engine.NetworkEnsure(ctx, n.GetName(), n.GetLabels(), n.GetEncrypted())
		if err != nil {
			return "", err
		}
		return output(res)
	case *agentv1.Command_ServiceApply:
		res, err := x.engine.ServiceApply(ctx, k.ServiceApply)
		if err != nil {
			return "", err
		}
		return output(res)
	case *agentv1.Command_ServiceRemove:
		res, err := x.engine.ServiceRemove(ctx, k.ServiceRemove.GetServiceName())
		if err != nil {
			return "", err
		}
		return output(res)
	case *agentv1.Command_EdgeConfigure:
		return x.edgeConfigure(ctx, k.EdgeConfigure)
	case *agentv1.Command_LogsFollow:
		return "", errors.New("logs_follow is ephemeral: the session follows logs, it is never executed in sequence")
	case nil:
		return "", errors.New("the command has no kind")
	default:
		return "", fmt.Errorf("command kind %T is unknown to this agent version", k)
	}
}

// EdgeResult is the edge_configure command's output.
type EdgeResult struct {
	// Applied is false when the command's version was older than the one applied before.
	Applied bool  `json:"applied"`
	Version int64 `json:"version"`
}

func (x *Executor) edgeConfigure(ctx context.Context, cfg *agentv1.EdgeConfigure) (string, error) {
	x.mu.Lock()
	edge, last := x.edge, x.edgeVersion
	x.mu.Unlock()
	if edge == nil {
		return "", ErrNotEdge
	}
	if cfg.GetVersion() < last {
		// A newer configuration is in place already: the older one must not replace it.
		return output(EdgeResult{Applied: false, Version: last})
	}
	if err := edge.Configure(ctx, cfg); err != nil {
		return "", fmt.Errorf("edge_configure version %d: %w", cfg.GetVersion(), err)
	}
	x.mu.Lock()
	x.edgeVersion = max(x.edgeVersion, cfg.GetVersion())
	x.mu.Unlock()
	return output(EdgeResult{Applied: true, Version: cfg.GetVersion()})
}

func (x *Executor) or(addr string) string {
	if addr != "" {
		return addr
	}
	return x.advertiseAddr
}

func output(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode output: %w", err)
	}
	return string(b), nil
}
