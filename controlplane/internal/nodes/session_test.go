package nodes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

func TestResumeAfterReconnectSendsExactlyTheUnackedCommandsInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 300 * time.Millisecond })
	clusterID, _ := b.cluster(t, "pending")
	// A worker of a pending cluster has nothing to do on its own, so the test's commands are
	// all it gets.
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	for range 5 {
		b.enqueue(t, nodeID, update("x", "active"))
	}

	first := b.connect(t, nodeID, 0)
	got := []*agentv1.Command{first.next(), first.next(), first.next(), first.next(), first.next()}
	require.Equal(t, []int64{1, 2, 3, 4, 5}, seqs(got...))
	require.Equal(t, "active", got[0].GetNodeUpdate().GetAvailability())
	require.NotEmpty(t, got[0].GetId())
	require.NotNil(t, got[0].GetCreatedAt())
	b.ack(t, nodeID, 1, "{}")
	b.ack(t, nodeID, 2, "{}")
	first.cancel()
	first.ended(waitFor)

	// Queued while the agent was away.
	b.enqueue(t, nodeID, update("x", "drain"))
	second := b.connect(t, nodeID, 2)
	require.Equal(t, []int64{3, 4, 5, 6}, seqs(second.next(), second.next(), second.next(), second.next()))
	second.idle()
	// And new ones as they are queued, by notification (the poll is an hour).
	b.enqueue(t, nodeID, update("x", "pause"))
	require.Equal(t, int64(7), second.next().GetSeq())
	second.idle()
}

func TestResumingPastUnacknowledgedCommandsAcknowledgesThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	for range 3 {
		b.enqueue(t, nodeID, update("x", "active"))
	}
	// The agent finished 1 and 2 but its acknowledgements were lost.
	a := b.connect(t, nodeID, 2)
	require.Equal(t, int64(3), a.next().GetSeq())
	rows, err := b.st.NodeCommandsAfter(b.ctx, nodeID, 0, 10)
	require.NoError(t, err)
	require.NotNil(t, rows[0].AckedAt)
	require.Nil(t, rows[0].OK, "the outcome of a command acknowledged only by resuming is unknown")
	require.NotNil(t, rows[1].AckedAt)
	require.Nil(t, rows[2].AckedAt)

	// The agent repeats its lost acknowledgement of 2 on the new stream: the outcome is
	// recorded, once; a third repeat changes nothing.
	require.NoError(t, b.m.Ack(b.ctx, nodeID, 2, false, "drain refused", "{}"))
	require.NoError(t, b.m.Ack(b.ctx, nodeID, 2, true, "", "{}"))
	rows, err = b.st.NodeCommandsAfter(b.ctx, nodeID, 0, 10)
	require.NoError(t, err)
	require.NotNil(t, rows[1].OK)
	require.False(t, *rows[1].OK, "the first repeated outcome is kept")
	require.Equal(t, "drain refused", rows[1].Error)
	require.Nil(t, rows[0].OK, "commands without a repeated acknowledgement stay unknown")
}

func TestAckingAGivenSequenceAcknowledgesTheLowerOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	for range 3 {
		b.enqueue(t, nodeID, update("x", "active"))
	}
	require.NoError(t, b.m.Ack(b.ctx, nodeID, 2, false, "boom", ""))
	rows, err := b.st.NodeCommandsAfter(b.ctx, nodeID, 0, 10)
	require.NoError(t, err)
	require.NotNil(t, rows[0].AckedAt)
	require.NotNil(t, rows[1].AckedAt)
	require.False(t, *rows[1].OK)
	require.Equal(t, "boom", rows[1].Error)
	require.Nil(t, rows[2].AckedAt)

	require.ErrorIs(t, b.m.Ack(b.ctx, nodeID, 99, true, "", ""), nodes.ErrUnknownCommand)
}

func TestASecondConnectClosesTheFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")

	first := b.connect(t, nodeID, 0)
	b.enqueue(t, nodeID, update("x", "active"))
	require.Equal(t, int64(1), first.next().GetSeq())

	second := b.connect(t, nodeID, 1)
	require.ErrorIs(t, first.ended(time.Second), nodes.ErrReplaced)
	b.enqueue(t, nodeID, update("x", "drain"))
	require.Equal(t, int64(2), second.next().GetSeq())
	require.True(t, b.m.Connected(nodeID))
}

func TestCloseEndsALiveStreamWithinASecond(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)
	b.enqueue(t, nodeID, update("x", "active"))
	a.next()

	b.m.Close(nodeID)
	require.ErrorIs(t, a.ended(time.Second), nodes.ErrClosed)
	require.False(t, b.m.Connected(nodeID))
}

func TestCommandsQueuedInARolledBackTransactionNeverReachTheAgent(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 300 * time.Millisecond })
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)

	rollback := errors.New("changed my mind")
	err := b.st.InTx(b.ctx, func(q *store.Queries) error {
		if _, err := b.m.Enqueue(b.ctx, q, nodeID, update("rolled-back", "drain")); err != nil {
			return err
		}
		return rollback
	})
	require.ErrorIs(t, err, rollback)
	b.enqueue(t, nodeID, update("committed", "active"))

	cmd := a.next()
	require.Equal(t, int64(1), cmd.GetSeq(), "the rolled-back command took no sequence number")
	require.Equal(t, "committed", cmd.GetNodeUpdate().GetSwarmNodeId())
	a.idle()

	// A session that starts afterwards does not find it either.
	a.cancel()
	a.ended(waitFor)
	again := b.connect(t, nodeID, 0)
	require.Equal(t, "committed", again.next().GetNodeUpdate().GetSwarmNodeId())
	again.idle()
}

func TestKeepalivesFlowWhileIdle(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = 50 * time.Millisecond })
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)
	for range 3 {
		a.idle()
	}
	// A keepalive is no reason to read the outbox (at thousands of sessions, that was most of
	// the control plane's queries): a command queued without a notification waits for the
	// poll (an hour here), however many keepalives go by.
	b.exec(t, `INSERT INTO node_commands (node_id, seq, kind, payload) VALUES ($1, 1, 'node_update', '')`, nodeID)
	for range 5 {
		a.idle()
	}
}

// A report answered over the connection of the node's stream is that stream's keepalive:
// while such reports keep coming, the stream sends none. A report over another connection
// is not, and once the reports stop, keepalives come again.
func TestReportsOverTheStreamsConnectionStandInForKeepalives(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = interval })
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	conn := nodes.WithConnection(b.ctx)
	a := b.connectOn(t, conn, nodeID, 0)
	a.idle() // the keepalive that says the session is up, at once
	report := func(ctx context.Context) bool {
		t.Helper()
		resp, err := b.m.Report(ctx, nodeID, &agentv1.ReportRequest{})
		require.NoError(t, err)
		return resp.GetStreamKeepalive()
	}
	require.True(t, report(conn), "a report over the stream's connection is its keepalive")
	// A keepalive whose timer fired before that report may be on its way: let it arrive.
	time.Sleep(interval / 4)
	for len(a.msgs) > 0 {
		<-a.msgs
	}
	for range 20 { // five intervals
		require.True(t, report(conn))
		time.Sleep(interval / 4)
	}
	require.Zero(t, len(a.msgs), "keepalives came while reports over the stream's connection did")

	require.False(t, report(nodes.WithConnection(b.ctx)), "a report over another connection is no keepalive of the stream")
	require.False(t, report(b.ctx), "a report over an unknown connection is no keepalive of the stream")
	a.idle()
	a.idle()
}

// Sessions that start together (every agent reconnecting after a restart) must not send
// their keepalives together ever after.
func TestSessionsStartedTogetherSpreadTheirKeepalives(t *testing.T) {
	t.Parallel()
	const interval = 400 * time.Millisecond
	b := setup(t, func(o *nodes.Options) { o.KeepaliveInterval = interval })
	clusterID, _ := b.cluster(t, "pending")
	agents := make([]*agent, 20)
	for i := range agents {
		agents[i] = b.connect(t, b.node(t, clusterID, store.RoleWorkerNode, fmt.Sprintf("10.0.1.%d", i+1), ""), 0)
	}
	for _, a := range agents {
		a.idle() // the keepalive that says the session is up, at once
	}
	second := make([]time.Time, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Go(func() {
			select {
			case <-a.msgs:
				second[i] = time.Now()
			case <-time.After(waitFor):
			}
		})
	}
	wg.Wait()
	require.NotContains(t, second, time.Time{}, "a session sent no second keepalive")
	first, last := slices.MinFunc(second, time.Time.Compare), slices.MaxFunc(second, time.Time.Compare)
	require.Greater(t, last.Sub(first), interval/4,
		"the second keepalives of 20 sessions started together came within %s (random phases spread them over the interval)", last.Sub(first))
}

func TestAPollFindsCommandsWithoutNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.PollInterval = 50 * time.Millisecond })
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	a := b.connect(t, nodeID, 0)
	// Inserted behind the outbox's back: no NOTIFY.
	b.exec(t, `INSERT INTO node_commands (node_id, seq, kind, payload) VALUES ($1, 1, 'node_update', '')`, nodeID)
	require.Equal(t, int64(1), a.next().GetSeq())
}

func TestRemovedNodesCannotConnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	b.exec(t, `UPDATE nodes SET state = 'removed', removed_at = now() WHERE id = $1`, nodeID)
	a := b.connect(t, nodeID, 0)
	require.ErrorIs(t, a.ended(waitFor), nodes.ErrNodeRemoved)
}

func TestASessionOnAnotherReplicaEndsTheOlderOneHere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	here := b.connect(t, nodeID, 0)
	b.enqueue(t, nodeID, update("x", "active"))
	here.next()

	// A second replica on the same database; the agent reconnects there.
	other := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger()})
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	sent := make(chan *agentv1.ConnectResponse, 10)
	go func() {
		_ = other.Serve(ctx, nodeID, 1, func(r *agentv1.ConnectResponse) error { sent <- r; return nil })
	}()
	require.ErrorIs(t, here.ended(time.Second), nodes.ErrReplaced)
	select {
	case <-sent:
	case <-time.After(waitFor):
		t.Fatal("the new session sent nothing")
	}
}
