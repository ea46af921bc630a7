// Package executor holds the mapping from each command the control plane sends to the
// Docker Engine and gossip calls that carry it out, and the JSON output each command
// acknowledges with (docs/agents-contract.md, "Command outputs").
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
}

// Gossip takes a new cluster gossip configuration.
type Gossip interface {
	Apply(ctx context.Context, cfg gossip.Config) error
}

// Executor runs commands.
type Executor struct {
	engine        Engine
	gossip        Gossip
	advertiseAddr string
}

// New returns an Executor. advertiseAddr is the node's own address, used when a swarm
// command names none.
func New(engine Engine, g Gossip, advertiseAddr string) *Executor {
	return &Executor{engine: engine, gossip: g, advertiseAddr: advertiseAddr}
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
	case nil:
		return "", errors.New("the command has no kind")
	default:
		return "", fmt.Errorf("command kind %T is unknown to this agent version", k)
	}
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
