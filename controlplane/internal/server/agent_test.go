package server_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

func TestAHeartbeatWithARevokedCertificateIsRefusedWithinASecondAndEverythingElseAtOnce(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	agent, err := env.Enroll(ctx, env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1), testenv.Facts("a", "10.0.0.1"))
	require.NoError(t, err)
	// Heartbeats that pass: the certificate is now remembered as good.
	for range 2 {
		_, err = agent.Client.Report(ctx, connect.NewRequest(&agentv1.ReportRequest{}))
		require.NoError(t, err)
	}

	_, err = env.Store.RevokeNodeCertificates(ctx, agent.NodeID)
	require.NoError(t, err)
	_, csr, err := pki.NewNodeKey("a")
	require.NoError(t, err)
	_, err = agent.Client.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "renewal is refused at once: %v", err)
	require.Contains(t, err.Error(), "revoked")

	var last error
	testenv.WaitFor(t, time.Second, "heartbeats refused after the revocation", func() bool {
		_, last = agent.Client.Report(ctx, connect.NewRequest(&agentv1.ReportRequest{}))
		return last != nil
	})
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(last), "%v", last)
	require.Contains(t, last.Error(), "revoked")
}

// A report over the connection that carries the node's command stream is answered as that
// stream's keepalive; one over another connection is not.
func TestAReportOverTheStreamsConnectionIsItsKeepalive(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	agent, err := env.Enroll(ctx, env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1), testenv.Facts("a", "10.0.0.1"))
	require.NoError(t, err)
	report := func(c agentv1connect.AgentServiceClient) bool {
		t.Helper()
		resp, err := c.Report(ctx, connect.NewRequest(&agentv1.ReportRequest{}))
		require.NoError(t, err)
		return resp.Msg.GetStreamKeepalive()
	}
	require.False(t, report(agent.Client), "no stream yet")

	stream, err := agent.Client.Connect(ctx, connect.NewRequest(&agentv1.ConnectRequest{AgentVersion: "test"}))
	require.NoError(t, err)
	defer stream.Close()
	require.True(t, stream.Receive(), "the first keepalive: %v", stream.Err())
	require.True(t, report(agent.Client), "a report over the stream's connection")

	cert := &tls.Certificate{Certificate: [][]byte{agent.Cert.Raw}, PrivateKey: agent.Key, Leaf: agent.Cert}
	other := testenv.AgentHTTP(env.AgentTLS(cert))
	defer other.CloseIdleConnections()
	require.False(t, report(agentv1connect.NewAgentServiceClient(other, env.AgentURL)), "a report over another connection")
}
