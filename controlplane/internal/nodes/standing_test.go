package nodes_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/store"
)

// replica starts another manager on the bundle's database, as a second control-plane replica
// would run, and waits until it listens.
func (b *bundle) replica(t *testing.T, tweak ...func(*nodes.Options)) *nodes.Manager {
	t.Helper()
	opts := nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger(),
		PollInterval: time.Hour, KeepaliveInterval: time.Hour, HealthInterval: time.Hour,
		FlushInterval: time.Hour, MetricsInterval: time.Hour}
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
		t.Fatal("replica not listening within 20s")
	}
	return m
}

// certifiedNode inserts a worker with one certificate and returns both.
func (b *bundle) certifiedNode(t *testing.T) (uuid.UUID, string) {
	t.Helper()
	clusterID, _ := b.cluster(t, "pending")
	nodeID := b.node(t, clusterID, store.RoleWorkerNode, "10.0.0.2", "")
	serial := "cert-" + nodeID.String()[:8]
	b.exec(t, `INSERT INTO node_certificates (serial, node_id, expires_at) VALUES ($1, $2, now() + interval '1 day')`,
		serial, nodeID)
	return nodeID, serial
}

// requireGood checks, twice (the second answer comes from the cache), that m finds the
// certificate good.
func requireGood(t *testing.T, m *nodes.Manager, nodeID uuid.UUID, serial string) {
	t.Helper()
	for range 2 {
		s, err := m.CertificateStanding(context.Background(), serial)
		require.NoError(t, err)
		require.Equal(t, nodeID, s.NodeID)
		require.False(t, s.Revoked || s.NodeRemoved)
	}
}

// refusedWithin polls m until it no longer finds the certificate good, failing after within.
func refusedWithin(t *testing.T, m *nodes.Manager, serial string, within time.Duration) store.CertificateStanding {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, err := m.CertificateStanding(context.Background(), serial)
		require.NoError(t, err)
		if s.Revoked || s.NodeRemoved {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate %s still found good %s after it stopped being", serial, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestARevokedCertificateIsRefusedOnEveryReplicaWithinASecondThoughItWasCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.replica(t)
	nodeID, serial := b.certifiedNode(t)
	requireGood(t, b.m, nodeID, serial)
	requireGood(t, other, nodeID, serial)

	// Revoked by a third party (another replica, say): only its notification tells these two.
	_, err := b.st.RevokeNodeCertificates(b.ctx, nodeID)
	require.NoError(t, err)
	require.True(t, refusedWithin(t, b.m, serial, time.Second).Revoked)
	require.True(t, refusedWithin(t, other, serial, time.Second).Revoked)
}

func TestARemovedNodesCertificateIsRefusedOnEveryReplicaWithinASecond(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.replica(t)
	nodeID, serial := b.certifiedNode(t)
	requireGood(t, b.m, nodeID, serial)
	requireGood(t, other, nodeID, serial)

	b.inTx(t, func(q *store.Queries) error {
		_, err := b.m.RemoveNode(b.ctx, q, nodeID)
		return err
	})
	b.m.Close(nodeID) // as the API does after the removal commits
	s, err := b.m.CertificateStanding(b.ctx, serial)
	require.NoError(t, err)
	require.True(t, s.NodeRemoved && s.Revoked, "the replica that removed the node refuses it at once")
	require.True(t, refusedWithin(t, other, serial, time.Second).NodeRemoved)
}

func TestARevocationNobodyNotifiedIsFoundByThePoll(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *nodes.Options) { o.PollInterval = 100 * time.Millisecond })
	nodeID, serial := b.certifiedNode(t)
	requireGood(t, b.m, nodeID, serial)

	// Written behind the control plane's back: no notification.
	b.exec(t, `UPDATE node_certificates SET revoked_at = now() WHERE serial = $1`, serial)
	require.True(t, refusedWithin(t, b.m, serial, 2*time.Second).Revoked)
}

func TestAReplicaThatIsNotListeningDoesNotCacheStandings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Never run: it hears no notifications, so it must ask the database every time.
	deaf := nodes.New(nodes.Options{Store: b.st, Keyring: b.keyring, Logger: discardLogger()})
	nodeID, serial := b.certifiedNode(t)
	requireGood(t, deaf, nodeID, serial)

	b.exec(t, `UPDATE node_certificates SET revoked_at = now() WHERE serial = $1`, serial)
	s, err := deaf.CertificateStanding(b.ctx, serial)
	require.NoError(t, err)
	require.True(t, s.Revoked)
}
