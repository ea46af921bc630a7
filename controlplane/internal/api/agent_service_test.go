package api_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

func requireConnectCode(t *testing.T, err error, code connect.Code, msg string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, connect.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), msg)
}

func TestEnrollIssuesACertificateThatAuthenticatesTheNode(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	token := env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_MANAGER, 1)

	agent, err := env.Enroll(ctx, token, testenv.Facts("node-1", "10.0.0.1"))
	require.NoError(t, err)
	require.Equal(t, cluster, agent.ClusterID)
	id, err := pki.NodeID(agent.Cert)
	require.NoError(t, err)
	require.Equal(t, agent.NodeID.String(), id, "the certificate names the node")
	require.LessOrEqual(t, time.Until(agent.Cert.NotAfter), 7*24*time.Hour)

	// The certificate authenticates node RPCs: renewal works with it...
	_, csr, err := pki.NewNodeKey("node-1")
	require.NoError(t, err)
	renewed, err := agent.Client.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	require.NoError(t, err)
	cert, err := pki.ParseCertificatePEM([]byte(renewed.Msg.GetCertificatePem()))
	require.NoError(t, err)
	require.NotEqual(t, agent.Cert.SerialNumber, cert.SerialNumber)

	// ...and without one, node RPCs are refused.
	anon := agentv1connect.NewAgentServiceClient(testenv.AgentHTTP(env.AgentTLS(nil)), env.AgentURL)
	_, err = anon.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "node certificate is required")

	var events int
	require.NoError(t, env.Store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM activity_events WHERE event_type = 'cluster.node.enrolled' AND entity_id = $1`, agent.NodeID.String()).Scan(&events))
	require.Equal(t, 1, events)
}

func TestEnrollRefusesUsedExpiredRevokedAndForeignTokensClearly(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")

	used := env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1)
	_, err := env.Enroll(ctx, used, testenv.Facts("a", "10.0.0.1"))
	require.NoError(t, err)
	_, err = env.Enroll(ctx, used, testenv.Facts("b", "10.0.0.2"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "already used")

	expired := env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1)
	parsed, err := pki.ParseEnrollmentToken(expired)
	require.NoError(t, err)
	_, err = env.Store.Pool().Exec(ctx, `UPDATE enrollment_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = $1`, parsed.Hash())
	require.NoError(t, err)
	_, err = env.Enroll(ctx, expired, testenv.Facts("c", "10.0.0.3"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "expired")

	revoked := env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1)
	parsed, err = pki.ParseEnrollmentToken(revoked)
	require.NoError(t, err)
	_, err = env.Store.Pool().Exec(ctx, `UPDATE enrollment_tokens SET revoked_at = now() WHERE token_hash = $1`, parsed.Hash())
	require.NoError(t, err)
	_, err = env.Enroll(ctx, revoked, testenv.Facts("d", "10.0.0.4"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "revoked")

	foreignCA, err := pki.NewCA("another platform", time.Now())
	require.NoError(t, err)
	_, err = env.Enroll(ctx, pki.NewEnrollmentToken(foreignCA.Pin()).String(), testenv.Facts("e", "10.0.0.5"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "another control plane")

	_, err = env.Enroll(ctx, pki.NewEnrollmentToken(env.Server.Authority().Pin()).String(), testenv.Facts("f", "10.0.0.6"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "unknown enrollment token")

	_, err = env.Enroll(ctx, "not-a-token-at-all", testenv.Facts("g", "10.0.0.7"))
	requireConnectCode(t, err, connect.CodeInvalidArgument, "token")

	var nodes int
	require.NoError(t, env.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM nodes`).Scan(&nodes))
	require.Equal(t, 1, nodes, "refused enrollments leave no node behind")
}

func TestAMultiUseTokenEnrollsUpToItsLimitEvenWhenNodesRace(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	token := env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 3)

	results := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := env.Enroll(ctx, token, testenv.Facts(fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.1.%d", i+1)))
			results <- err
		}()
	}
	ok := 0
	for range 8 {
		if err := <-results; err == nil {
			ok++
		} else {
			require.Contains(t, err.Error(), "already used")
		}
	}
	require.Equal(t, 3, ok, "exactly the usage limit enrolls")
}

func TestRevokedCertificatesAndRemovedNodesAreRefused(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	agent, err := env.Enroll(ctx, env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1), testenv.Facts("a", "10.0.0.1"))
	require.NoError(t, err)
	_, csr, err := pki.NewNodeKey("a")
	require.NoError(t, err)

	_, err = env.Store.RevokeNodeCertificates(ctx, agent.NodeID)
	require.NoError(t, err)
	_, err = agent.Client.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "revoked")

	_, err = env.Store.Pool().Exec(ctx, `UPDATE node_certificates SET revoked_at = NULL; UPDATE nodes SET state = 'removed', removed_at = now()`)
	require.NoError(t, err)
	_, err = agent.Client.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "removed")
}

func TestCertificatesFromAnotherCAAreRejectedAtTheTLSLayer(t *testing.T) {
	env := testenv.Start(t)
	foreign, err := pki.NewCA("another platform", time.Now())
	require.NoError(t, err)
	key, csr, err := pki.NewNodeKey("x")
	require.NoError(t, err)
	cert, err := foreign.SignNode(csr, pki.NodeCertificate{NodeID: "00000000-0000-0000-0000-000000000001", Lifetime: time.Hour}, time.Now())
	require.NoError(t, err)
	client := agentv1connect.NewAgentServiceClient(testenv.AgentHTTP(env.AgentTLS(&tls.Certificate{
		Certificate: [][]byte{cert.Raw}, PrivateKey: key,
	})), env.AgentURL)
	_, err = client.Renew(context.Background(), connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "tls"), "%v", err)
}

func TestTheCAAndNodeCertificatesSurviveAControlPlaneRestart(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "prod")
	agent, err := env.Enroll(ctx, env.EnrollmentToken(t, admin, cluster, agentv1.NodeRole_NODE_ROLE_WORKER, 1), testenv.Facts("a", "10.0.0.1"))
	require.NoError(t, err)
	pin := env.Server.Authority().Pin()

	env.Restart(t)
	require.Equal(t, pin, env.Server.Authority().Pin(), "the CA is loaded back, not made anew")
	_, csr, err := pki.NewNodeKey("a")
	require.NoError(t, err)
	fresh := agentv1connect.NewAgentServiceClient(testenv.AgentHTTP(env.AgentTLS(&tls.Certificate{
		Certificate: [][]byte{agent.Cert.Raw}, PrivateKey: agent.Key,
	})), env.AgentURL)
	_, err = fresh.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	require.NoError(t, err, "a certificate issued before the restart still authenticates the node")
}
