package nodes_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// waitFor is how long tests wait for something that should happen at once.
const waitFor = 10 * time.Second

// bundle is what a manager test works with: a store on a fresh database, a running manager
// and a clock the test may move.
type bundle struct {
	ctx     context.Context
	st      *store.Store
	m       *nodes.Manager
	keyring *secrets.Keyring
	clock   *clock
}

// clock is the real time plus an offset a test can add to.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// setup starts a manager on a fresh database. The poll interval is long, so a command that
// arrives at once arrived by notification; health checks and flushes are left to the tests
// unless tweak changes them.
func setup(t *testing.T, tweak ...func(*nodes.Options)) *bundle {
	t.Helper()
	st := testenv.Store(t)
	var key secrets.Key
	key.ID = "test"
	_, _ = rand.Read(key.Secret[:])
	keyring, err := secrets.NewKeyring(key)
	require.NoError(t, err)
	clk := &clock{}
	opts := nodes.Options{
		Store: st, Keyring: keyring,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		PollInterval:      time.Hour,
		KeepaliveInterval: time.Hour,
		HealthInterval:    time.Hour,
		FlushInterval:     time.Hour,
		MetricsInterval:   time.Hour,
		Now:               clk.Now,
	}
	for _, f := range tweak {
		f(&opts)
	}
	m := nodes.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("manager not listening within 20s")
	}
	return &bundle{ctx: context.Background(), st: st, m: m, keyring: keyring, clock: clk}
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.st.Pool().Exec(b.ctx, sql, args...)
	require.NoError(t, err)
}

// cluster inserts a cluster in state with a fresh sealed gossip key, which it returns. An
// active cluster gets a swarm id and sealed join tokens "SWMTKN-manager" and "SWMTKN-worker".
func (b *bundle) cluster(t *testing.T, state string) (uuid.UUID, []byte) {
	t.Helper()
	id := uuid.New()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b.exec(t, `INSERT INTO clusters (id, name, state, gossip_key_sealed) VALUES ($1, $2, $3, $4)`,
		id, "c-"+id.String()[:8], state, b.keyring.Seal(key, nodes.GossipKeyContext(id)))
	if state == "active" {
		b.exec(t, `UPDATE clusters SET swarm_id = 'swarm-1', manager_join_token_sealed = $2, worker_join_token_sealed = $3
			WHERE id = $1`, id, b.keyring.Seal([]byte("SWMTKN-manager"), nodes.JoinTokenContext(id, "manager")),
			b.keyring.Seal([]byte("SWMTKN-worker"), nodes.JoinTokenContext(id, "worker")))
	}
	return id, key
}

// node inserts an enrolled node. A non-empty swarmNodeID makes it a ready member of the swarm.
func (b *bundle) node(t *testing.T, clusterID uuid.UUID, role int16, addr, swarmNodeID string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	state := store.NodeEnrolling
	availability := ""
	if swarmNodeID != "" {
		state, availability = store.NodeReady, "active"
	}
	err := b.st.Pool().QueryRow(b.ctx, `INSERT INTO nodes (cluster_id, role, hostname, advertise_addr, swarm_node_id,
		state, availability) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		clusterID, role, "host-"+addr, addr, swarmNodeID, state, availability).Scan(&id)
	require.NoError(t, err)
	return id
}

func (b *bundle) getNode(t *testing.T, id uuid.UUID) store.Node {
	t.Helper()
	n, err := b.st.NodeByID(b.ctx, id)
	require.NoError(t, err)
	return n
}

func (b *bundle) clusterState(t *testing.T, id uuid.UUID) store.Cluster {
	t.Helper()
	c, err := b.st.ClusterByID(b.ctx, id)
	require.NoError(t, err)
	return c
}

// enqueue commits one command for a node and returns its seq.
func (b *bundle) enqueue(t *testing.T, nodeID uuid.UUID, cmd *agentv1.Command) int64 {
	t.Helper()
	var seq int64
	require.NoError(t, b.st.InTx(b.ctx, func(q *store.Queries) error {
		var err error
		seq, err = b.m.Enqueue(b.ctx, q, nodeID, cmd)
		return err
	}))
	return seq
}

// events counts activity events of a type about a node.
func (b *bundle) events(t *testing.T, nodeID uuid.UUID, eventType string) int {
	t.Helper()
	var n int
	require.NoError(t, b.st.Pool().QueryRow(b.ctx, `SELECT count(*) FROM activity_events
		WHERE entity_type = 'node' AND entity_id = $1 AND event_type = $2`, nodeID.String(), eventType).Scan(&n))
	return n
}

func update(swarmNodeID, availability string) *agentv1.Command {
	return &agentv1.Command{Kind: &agentv1.Command_NodeUpdate{NodeUpdate: &agentv1.NodeUpdate{
		SwarmNodeId: swarmNodeID, Availability: availability,
	}}}
}

// agent is a simulated agent's command stream: Serve runs in the background and what it
// sends arrives on msgs.
type agent struct {
	t      *testing.T
	nodeID uuid.UUID
	msgs   chan *agentv1.ConnectResponse
	done   chan error
	cancel context.CancelFunc
}

// connect opens a session for the node after afterSeq.
func (b *bundle) connect(t *testing.T, nodeID uuid.UUID, afterSeq int64) *agent {
	t.Helper()
	return b.connectOn(t, b.ctx, nodeID, afterSeq)
}

// connectOn opens a session whose requests come on the connection base is marked with
// (nodes.WithConnection).
func (b *bundle) connectOn(t *testing.T, base context.Context, nodeID uuid.UUID, afterSeq int64) *agent {
	t.Helper()
	ctx, cancel := context.WithCancel(base)
	a := &agent{t: t, nodeID: nodeID, msgs: make(chan *agentv1.ConnectResponse, 1000), done: make(chan error, 1), cancel: cancel}
	go func() {
		a.done <- b.m.Serve(ctx, nodeID, afterSeq, func(r *agentv1.ConnectResponse) error {
			a.msgs <- r
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(waitFor):
			t.Errorf("session of node %s did not end", nodeID)
		}
	})
	return a
}

// next returns the next command, skipping keepalives.
func (a *agent) next() *agentv1.Command {
	a.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case r := <-a.msgs:
			if r.GetCommand() != nil {
				return r.GetCommand()
			}
		case err := <-a.done:
			a.t.Fatalf("session ended while waiting for a command: %v", err)
		case <-timeout:
			a.t.Fatalf("no command for node %s within %s", a.nodeID, waitFor)
		}
	}
}

// idle waits for a keepalive and fails if a command comes first: the session had nothing
// more to send. It needs a short keepalive interval.
func (a *agent) idle() {
	a.t.Helper()
	select {
	case r := <-a.msgs:
		require.Nil(a.t, r.GetCommand(), "expected no more commands, got seq %d (%s)", r.GetCommand().GetSeq(), nodes.CommandKind(r.GetCommand()))
	case err := <-a.done:
		a.t.Fatalf("session ended: %v", err)
	case <-time.After(waitFor):
		a.t.Fatal("no keepalive")
	}
}

// ended waits for the session to end and returns why.
func (a *agent) ended(within time.Duration) error {
	a.t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		return err
	case <-time.After(within):
		a.t.Fatalf("session of node %s still open after %s", a.nodeID, within)
		return nil
	}
}

func (b *bundle) ack(t *testing.T, nodeID uuid.UUID, seq int64, output string) {
	t.Helper()
	require.NoError(t, b.m.Ack(b.ctx, nodeID, seq, true, "", output))
}

func seqs(cmds ...*agentv1.Command) []int64 {
	out := make([]int64, len(cmds))
	for i, c := range cmds {
		out[i] = c.GetSeq()
	}
	return out
}
