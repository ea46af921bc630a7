package executor

import (
	"context"
	"encoding/json"
	"errors"
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
	err                error
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
