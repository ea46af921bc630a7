package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"skypanel/agent/internal/docker"
	"skypanel/agent/internal/gossip"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

type fakeEngine struct {
	initAddr, joinAddr string
	leaveForce         bool
	updated            map[string]string
	removed            string
	network            []any
	applied            *agentv1.ServiceApply
	removedService     string
	err                error
}

func (f *fakeEngine) NetworkEnsure(_ context.Context, name string, labels map[string]string, encrypted bool) (docker.NetworkResult, error) {
	f.network = []any{name, labels["skypanel.organization"], encrypted}
	return docker.NetworkResult{NetworkID: "net1", Created: true}, f.err
}
func (f *fakeEngine) ServiceApply(_ context.Context, req *agentv1.ServiceApply) (docker.ServiceResult, error) {
	f.applied = req
	return docker.ServiceResult{ServiceID: "svc1", Changed: true}, f.err
}
func (f *fakeEngine) ServiceRemove(_ context.Context, name string) (docker.ServiceRemoveResult, error) {
	f.removedService = name
	return docker.ServiceRemoveResult{Removed: true}, f.err
}

func (f *fakeEngine) SwarmInit(_ context.Context, adv, _ string) (docker.SwarmTokens, error) {
	f.initAddr = adv
	return docker.SwarmTokens{SwarmID: "sw", SwarmNodeID: "n1", ManagerJoinToken: "SWMTKN-m", WorkerJoinToken: "SWMTKN-w"}, f.err
}
func (f *fakeEngine) SwarmJoin(_ context.Context, _ []string, _, adv, _ string) (string, error) {
	f.joinAddr = adv
	return "n2", f.err
}
func (f *fakeEngine) SwarmLeave(_ context.Context, force bool) error {
	f.leaveForce = force
	return f.err
}
func (f *fakeEngine) NodeUpdate(_ context.Context, id, avail string, labels map[string]string) error {
	f.updated = map[string]string{"id": id, "availability": avail}
	for k, v := range labels {
		f.updated["label:"+k] = v
	}
	return f.err
}
func (f *fakeEngine) NodeRemove(_ context.Context, id string, _ bool) error {
	f.removed = id
	return f.err
}

type fakeGossip struct{ cfg gossip.Config }

func (f *fakeGossip) Apply(_ context.Context, c gossip.Config) error { f.cfg = c; return nil }

func TestCommandsProduceTheContractsOutputs(t *testing.T) {
	eng, g := &fakeEngine{}, &fakeGossip{}
	x := New(eng, g, "10.0.0.5")
	ctx := context.Background()

	out, err := x.Execute(ctx, &agentv1.Command{Kind: &agentv1.Command_SwarmInit{SwarmInit: &agentv1.SwarmInit{}}})
	if err != nil {
		t.Fatal(err)
	}
	var init map[string]string
	if err := json.Unmarshal([]byte(out), &init); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"swarm_id": "sw", "swarm_node_id": "n1", "manager_join_token": "SWMTKN-m", "worker_join_token": "SWMTKN-w"}
	for k, v := range want {
		if init[k] != v {
			t.Fatalf("swarm_init output %s = %q, want %q (%s)", k, init[k], v, out)
		}
	}
	if eng.initAddr != "10.0.0.5" {
		t.Fatalf("swarm init without an address used %q, want the node's", eng.initAddr)
	}

	out, err = x.Execute(ctx, &agentv1.Command{Kind: &agentv1.Command_SwarmJoin{SwarmJoin: &agentv1.SwarmJoin{
		RemoteAddrs: []string{"10.0.0.1:2377"}, JoinToken: "t", AdvertiseAddr: "10.0.0.9"}}})
	if err != nil || out != `{"swarm_node_id":"n2"}` || eng.joinAddr != "10.0.0.9" {
		t.Fatalf("swarm_join: %q %v %q", out, err, eng.joinAddr)
	}

	for _, cmd := range []*agentv1.Command{
		{Kind: &agentv1.Command_SwarmLeave{SwarmLeave: &agentv1.SwarmLeave{Force: true}}},
		{Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{SwarmNodeId: "n3", Availability: "drain", Labels: map[string]string{"edge": "true"}}}},
		{Kind: &agentv1.Command_NodeRemove{NodeRemove: &agentv1.NodeRemove{SwarmNodeId: "n4"}}},
		{Kind: &agentv1.Command_GossipConfig{GossipConfig: &agentv1.GossipConfig{Key: []byte("k"), Label: "l", Peers: []string{"10.0.0.2:7947"}, Port: 7947}}},
	} {
		out, err := x.Execute(ctx, cmd)
		if err != nil || out != "{}" {
			t.Fatalf("%s: %q %v", Kind(cmd), out, err)
		}
	}
	if !eng.leaveForce || eng.updated["availability"] != "drain" || eng.updated["label:edge"] != "true" || eng.removed != "n4" {
		t.Fatalf("engine saw %+v", eng)
	}
	if g.cfg.Label != "l" || g.cfg.Port != 7947 || len(g.cfg.Peers) != 1 {
		t.Fatalf("gossip saw %+v", g.cfg)
	}
}

func TestFailuresAndUnknownCommandsAreErrors(t *testing.T) {
	x := New(&fakeEngine{err: errors.New("swarm init: boom")}, nil, "")
	if _, err := x.Execute(context.Background(), &agentv1.Command{Kind: &agentv1.Command_SwarmInit{SwarmInit: &agentv1.SwarmInit{}}}); err == nil {
		t.Fatal("an engine failure was not reported")
	}
	if _, err := x.Execute(context.Background(), &agentv1.Command{Seq: 1}); err == nil {
		t.Fatal("a command without a kind was accepted")
	}
	if _, err := x.Execute(context.Background(), &agentv1.Command{Kind: &agentv1.Command_GossipConfig{GossipConfig: &agentv1.GossipConfig{}}}); err == nil {
		t.Fatal("gossip config without gossip was accepted")
	}
}

type fakeEdge struct {
	versions []int64
	err      error
}

func (f *fakeEdge) Configure(_ context.Context, cfg *agentv1.EdgeConfigure) error {
	f.versions = append(f.versions, cfg.GetVersion())
	return f.err
}

func TestWorkloadCommandsMapToTheEngineAndAnswerWithTheirOutputs(t *testing.T) {
	eng := &fakeEngine{}
	x := New(eng, nil, "")
	ctx := context.Background()
	for _, tc := range []struct {
		cmd  *agentv1.Command
		kind string
		want string
	}{
		{&agentv1.Command{Kind: &agentv1.Command_NetworkEnsure{NetworkEnsure: &agentv1.NetworkEnsure{
			Name: "org-1", Labels: map[string]string{"skypanel.organization": "o1"}, Encrypted: true}}},
			"network_ensure", `{"network_id":"net1","created":true}`},
		{&agentv1.Command{Kind: &agentv1.Command_ServiceApply{ServiceApply: &agentv1.ServiceApply{ServiceName: "app-1", DeploymentId: "d1"}}},
			"service_apply", `{"service_id":"svc1","changed":true}`},
		{&agentv1.Command{Kind: &agentv1.Command_ServiceRemove{ServiceRemove: &agentv1.ServiceRemove{ServiceName: "app-2"}}},
			"service_remove", `{"removed":true}`},
	} {
		t.Run(tc.kind+" answers with its output", func(t *testing.T) {
			if got := Kind(tc.cmd); got != tc.kind {
				t.Fatalf("Kind = %q, want %q", got, tc.kind)
			}
			out, err := x.Execute(ctx, tc.cmd)
			if err != nil || out != tc.want {
				t.Fatalf("Execute = %q, %v; want %q", out, err, tc.want)
			}
		})
	}
	if fmt.Sprint(eng.network) != "[org-1 o1 true]" || eng.applied.GetDeploymentId() != "d1" || eng.removedService != "app-2" {
		t.Fatalf("engine saw network %v, apply %v, remove %q", eng.network, eng.applied, eng.removedService)
	}

	eng.err = errors.New("apply service app-1: boom")
	if _, err := x.Execute(ctx, &agentv1.Command{Kind: &agentv1.Command_ServiceApply{ServiceApply: &agentv1.ServiceApply{}}}); err == nil {
		t.Fatal("a failed apply was reported as success")
	}
}

func TestEdgeConfigureNeedsAnEdgeAndIgnoresOlderVersions(t *testing.T) {
	x := New(&fakeEngine{}, nil, "")
	ctx := context.Background()
	edgeCmd := func(v int64) *agentv1.Command {
		return &agentv1.Command{Kind: &agentv1.Command_EdgeConfigure{EdgeConfigure: &agentv1.EdgeConfigure{Version: v}}}
	}
	if _, err := x.Execute(ctx, edgeCmd(1)); !errors.Is(err, ErrNotEdge) || !strings.Contains(err.Error(), "this node is not an edge node") {
		t.Fatalf("edge_configure without an edge: %v", err)
	}

	edge := &fakeEdge{}
	x.SetEdge(edge)
	for _, tc := range []struct {
		version int64
		want    string
	}{
		{3, `{"applied":true,"version":3}`},
		{3, `{"applied":true,"version":3}`}, // the same again (a lost ack) is applied again: it is whole
		{2, `{"applied":false,"version":3}`},
		{5, `{"applied":true,"version":5}`},
	} {
		out, err := x.Execute(ctx, edgeCmd(tc.version))
		if err != nil || out != tc.want {
			t.Fatalf("version %d: %q %v, want %q", tc.version, out, err, tc.want)
		}
	}
	if fmt.Sprint(edge.versions) != "[3 3 5]" {
		t.Fatalf("the edge was configured with %v, want [3 3 5]", edge.versions)
	}

	edge.err = errors.New("bad certificate")
	if _, err := x.Execute(ctx, edgeCmd(6)); err == nil {
		t.Fatal("an edge failure was reported as success")
	}
	edge.err = nil
	if out, _ := x.Execute(ctx, edgeCmd(5)); out != `{"applied":true,"version":5}` {
		t.Fatalf("after a failed version 6, version 5 = %q; the failed one must not count as applied", out)
	}
}

func TestLogsFollowIsNotExecutedInSequence(t *testing.T) {
	x := New(&fakeEngine{}, nil, "")
	cmd := &agentv1.Command{Kind: &agentv1.Command_LogsFollow{LogsFollow: &agentv1.LogsFollow{StreamId: "s"}}}
	if Kind(cmd) != "logs_follow" {
		t.Fatalf("Kind = %q", Kind(cmd))
	}
	if _, err := x.Execute(context.Background(), cmd); err == nil {
		t.Fatal("logs_follow was executed as a sequenced command")
	}
}
