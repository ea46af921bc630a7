package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/pki"
)

// SimAgent is a simulated node agent with a real key and certificate, talking to the agent
// listener over mutual TLS. Tests use it where the real agent binary is beside the point.
type SimAgent struct {
	NodeID    uuid.UUID
	ClusterID uuid.UUID
	Key       *ecdsa.PrivateKey
	Cert      *x509.Certificate
	// Client calls AgentService with the node certificate.
	Client agentv1connect.AgentServiceClient
	HTTP   *http.Client
}

// AgentTLS is a client TLS config for the agent listener that trusts the platform CA.
func (e *Env) AgentTLS(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: e.Server.Authority().Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// AgentHTTP is an HTTP/2 client for the agent listener.
func AgentHTTP(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}}
}

// Enroll enrolls a simulated agent with an enrollment token.
func (e *Env) Enroll(ctx context.Context, token string, facts *agentv1.HostFacts) (*SimAgent, error) {
	key, csr, err := pki.NewNodeKey(facts.GetHostname())
	if err != nil {
		return nil, err
	}
	anon := agentv1connect.NewAgentServiceClient(AgentHTTP(e.AgentTLS(nil)), e.AgentURL)
	resp, err := anon.Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{Token: token, CsrDer: csr, Facts: facts}))
	if err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertificatePEM([]byte(resp.Msg.GetCertificatePem()))
	if err != nil {
		return nil, err
	}
	tlsCert := &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	httpClient := AgentHTTP(e.AgentTLS(tlsCert))
	return &SimAgent{
		NodeID: uuid.MustParse(resp.Msg.GetNodeId()), ClusterID: uuid.MustParse(resp.Msg.GetClusterId()),
		Key: key, Cert: cert, HTTP: httpClient, Client: agentv1connect.NewAgentServiceClient(httpClient, e.AgentURL),
	}, nil
}

// Facts are plausible host facts for a simulated node.
func Facts(hostname, addr string) *agentv1.HostFacts {
	return &agentv1.HostFacts{Hostname: hostname, Os: "Debian GNU/Linux 12", Kernel: "6.1.0", Arch: "amd64",
		Cpus: 2, MemoryBytes: 4 << 30, DockerVersion: "20.10.24", AgentVersion: "test", AdvertiseAddr: addr}
}

// Admin is a signed-in platform admin.
func (e *Env) Admin(t testing.TB) *User {
	t.Helper()
	u := e.NewUser(t, "admin-"+uuid.NewString()[:8]+"@example.com")
	e.MakePlatformAdmin(t, u)
	return u
}

// NewCluster creates a cluster through the API as admin and returns its id.
func (e *Env) NewCluster(t testing.TB, admin *User, name string) uuid.UUID {
	t.Helper()
	c := Client(e, clusterv1connect.NewClusterServiceClient, admin.Token)
	resp, err := c.CreateCluster(context.Background(), connect.NewRequest(&clusterv1.CreateClusterRequest{Name: name}))
	require.NoError(t, err)
	return uuid.MustParse(resp.Msg.GetCluster().GetId())
}

// EnrollmentToken creates an enrollment token through the API and returns its secret.
func (e *Env) EnrollmentToken(t testing.TB, admin *User, clusterID uuid.UUID, role agentv1.NodeRole, uses int32) string {
	t.Helper()
	c := Client(e, clusterv1connect.NewClusterServiceClient, admin.Token)
	resp, err := c.CreateEnrollmentToken(context.Background(), connect.NewRequest(&clusterv1.CreateEnrollmentTokenRequest{
		ClusterId: clusterID.String(), Role: role, UsageLimit: uses,
	}))
	require.NoError(t, err)
	return resp.Msg.GetSecret()
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// UUID parses an id the API returned.
func UUID(s string) uuid.UUID { return uuid.MustParse(s) }
