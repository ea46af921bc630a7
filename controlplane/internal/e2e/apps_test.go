package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/e2e"
	"skypanel/controlplane/internal/testenv"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/gen/go/skypanel/app/v1/appv1connect"
	billingv1 "skypanel/shared/gen/go/skypanel/billing/v1"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
	domainv1 "skypanel/shared/gen/go/skypanel/domain/v1"
	"skypanel/shared/gen/go/skypanel/domain/v1/domainv1connect"
	planv1 "skypanel/shared/gen/go/skypanel/plan/v1"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
	"skypanel/shared/workload"
)

// appImage is the test workload's image, imported on every node.
const appImage = "whoami:e2e"

// TestAppsOnThreeRealNodes is issue 5's end-to-end test on the three-node swarm: deploy an
// image, scale it across nodes, reach it through the edge, give it a custom domain with a
// certificate from a local ACME server and renew it, roll out under load without a failed
// request, roll back by itself and by hand, keep tenants apart, stream logs from every
// replica, finish a deployment across a control-plane crash, and suspend and resume the app
// as its organization's balance runs out and is topped up.
func TestAppsOnThreeRealNodes(t *testing.T) {
	nodes := e2e.Up(t, 3)
	ctx := t.Context()
	phase := phases(t)
	acme := startACME(t)
	c := formCluster(t, nodes, phase, func(cfg *config.Config) {
		cfg.ACMEDirectory, cfg.ACMECAFile, cfg.ACMEEmail = acme.Directory, acme.CAFile, "ops@example.com"
		cfg.DNSResolver = acme.DNS
		cfg.DeployStepTimeout = 3 * time.Minute
		// Node health is not under test here: a loaded machine must not make a node look
		// down (it would have no room for apps).
		cfg.NodeTTL, cfg.NodeGrace = 30*time.Second, 15*time.Second
		// A balance that runs out suspends the apps five seconds later (step 10).
		cfg.BillingGracePeriod = 5 * time.Second
	})
	importImage(t, nodes, whoamiBinary(t))
	phase("import the app image on every node")

	plans := testenv.Client(c.env, planv1connect.NewPlanServiceClient, c.admin.Token)
	plan, err := plans.CreatePlan(ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "tiny", CpuMillis: 100, MemoryMib: 64, PricePerHour: 1, Currency: "USD", MaxReplicas: 3, MaxApps: 5}}))
	require.NoError(t, err)
	a := newTenant(t, c.env, "alice@example.com", "Acme", plan.Msg.GetPlan().GetId())
	b := newTenant(t, c.env, "bob@example.com", "Beta", plan.Msg.GetPlan().GetId())
	edge := &edgeClient{addr: nodes.Addr(1)}
	// Money enough for the test: metering runs if an hour begins meanwhile.
	billing := testenv.Client(c.env, billingv1connect.NewBillingServiceClient, c.admin.Token)
	for _, tn := range []*tenant{a, b} {
		_, err := billing.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: tn.org,
			Amount: 100000, Currency: "USD", Reason: "test credit"}))
		require.NoError(t, err)
	}

	// 1. Deploy one replica; it answers through the edge by its default hostname.
	web, dep := a.create(t, "web", appSpec("1", 1))
	a.waitDeployment(t, dep, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	host := web.GetDefaultHostname()
	require.Equal(t, "web-acme.apps.localhost", host)
	eventually(t, 60*time.Second, "the app answering through the edge", func() bool {
		body, code, err := edge.get(host)
		return err == nil && code == http.StatusOK && strings.HasPrefix(body, "release=1 ")
	})
	// Over HTTPS too, with a certificate from the platform CA (for local development names).
	platformCA := x509.NewCertPool()
	resp, err := http.Get(c.env.URL + "/platform-ca.pem")
	require.NoError(t, err)
	caPEM, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.True(t, platformCA.AppendCertsFromPEM(caPEM))
	body, code, err := edge.getTLS(host, platformCA)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.HasPrefix(body, "release=1 "), body)
	phase("deploy and reach through the edge")

	// 2. Scale to three: replicas on more than one node, all answering through the edge.
	sc, err := a.apps.ScaleApp(ctx, connect.NewRequest(&appv1.ScaleAppRequest{OrganizationId: a.org, AppId: web.GetId(), Replicas: 3}))
	require.NoError(t, err)
	a.waitDeployment(t, sc.Msg.GetDeployment(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	reps := a.runningReplicas(t, web.GetId())
	require.Len(t, reps, 3)
	nodesUsed := map[string]bool{}
	for _, r := range reps {
		nodesUsed[r.GetNodeHostname()] = true
	}
	require.GreaterOrEqual(t, len(nodesUsed), 2, "replicas spread over nodes: %v", reps)
	seen := map[string]bool{}
	eventually(t, 30*time.Second, "the edge spreading requests over the three replicas", func() bool {
		body, _, err := edge.get(host)
		if err == nil {
			seen[body] = true
		}
		return len(seen) >= 3
	})
	phase("scale to three across nodes")

	// 3. Logs: lines from every replica, labelled by replica.
	a.requireLogsFromReplicas(t, web.GetId(), 3)
	phase("logs from every replica")

	// 4. A new release rolls out under continuous load (about 50 requests/s) without one
	// failed request.
	load := edge.load(host, 50)
	upd := a.update(t, web.GetId(), appSpec("2", 3))
	a.waitDeployment(t, upd, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	eventually(t, 30*time.Second, "release 2 answering", func() bool {
		body, _, err := edge.get(host)
		return err == nil && strings.HasPrefix(body, "release=2 ")
	})
	stats := load.stop()
	t.Logf("rolling update under load: %s", stats)
	require.Zero(t, stats.failed, "failed requests during the rolling update: %s", stats)
	require.Greater(t, stats.ok, int64(100))
	phase("rolling update under load")

	// 5. A broken release (it fails its health check): Swarm rolls back by itself, recorded
	// as such, while release 2 keeps serving.
	load = edge.load(host, 50)
	broken := appSpec("3", 3)
	broken.Env = append(broken.Env, &appv1.EnvVar{Name: "BROKEN", Value: "1"})
	bad := a.update(t, web.GetId(), broken)
	rolled := a.waitDeployment(t, bad, appv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
	require.True(t, rolled.GetAutomaticRollback())
	stats = load.stop()
	t.Logf("broken release under load: %s; deployment: %s", stats, rolled.GetMessage())
	require.Zero(t, stats.failed, "failed requests while the broken release rolled back: %s", stats)
	body, _, err = edge.get(host)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(body, "release=2 "), body)
	got := a.app(t, web.GetId())
	require.EqualValues(t, 2, got.GetCurrentRelease())
	phase("automatic rollback")

	// 6. Roll back by hand to release 1, as it was.
	rels, err := a.apps.ListReleases(ctx, connect.NewRequest(&appv1.ListReleasesRequest{OrganizationId: a.org, AppId: web.GetId()}))
	require.NoError(t, err)
	var first *appv1.Release
	for _, r := range rels.Msg.GetReleases() {
		if r.GetVersion() == 1 {
			first = r
		}
	}
	require.NotNil(t, first)
	rb, err := a.apps.Rollback(ctx, connect.NewRequest(&appv1.RollbackRequest{OrganizationId: a.org, AppId: web.GetId(), ReleaseId: first.GetId()}))
	require.NoError(t, err)
	a.waitDeployment(t, rb.Msg.GetDeployment(), appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	eventually(t, 30*time.Second, "release 1 answering again", func() bool {
		body, _, err := edge.get(host)
		return err == nil && strings.HasPrefix(body, "release=1 ")
	})
	phase("manual rollback")

	// 7. Tenants apart: a container on organization B's network can neither resolve nor
	// reach organization A's app, while one on A's network can (the probe works).
	other, odep := b.create(t, "other", appSpec("b", 1))
	b.waitDeployment(t, odep, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	_ = other
	svcA := workload.ServiceName(web.GetId())
	out, err := nodes.Docker(ctx, 2, "run", "--rm", "--network", workload.NetworkName(a.org), appImage, "fetch", svcA, "8080")
	require.NoError(t, err, "the probe on A's own network: %s", out)
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		addrs = append(addrs, strings.Fields(line)[0])
	}
	require.Len(t, addrs, 3, "A's three replicas: %s", out)
	out, err = nodes.Docker(ctx, 2, "run", "--rm", "--network", workload.NetworkName(b.org), appImage, "fetch", svcA, "8080")
	require.Error(t, err, "B resolving A's service: %s", out)
	for _, addr := range addrs {
		out, err = nodes.Docker(ctx, 2, "run", "--rm", "--network", workload.NetworkName(b.org), appImage, "fetch", addr, "8080")
		require.Error(t, err, "B connecting to A's replica %s: %s", addr, out)
	}
	phase("tenant isolation")

	// 8. A custom domain: proven by a DNS TXT record, then a certificate from the ACME server
	// (HTTP-01 answered by the edge); HTTPS trusting the ACME server's root, HTTP redirects.
	domains := testenv.Client(c.env, domainv1connect.NewDomainServiceClient, a.token)
	added, err := domains.AddDomain(ctx, connect.NewRequest(&domainv1.AddDomainRequest{OrganizationId: a.org, AppId: web.GetId(),
		Hostname: "shop.example.com", Method: domainv1.VerificationMethod_VERIFICATION_METHOD_DNS_TXT}))
	require.NoError(t, err)
	dom := added.Msg.GetDomain()
	require.Equal(t, "_skypanel-challenge.shop.example.com", dom.GetRecordName())
	_, err = domains.VerifyDomain(ctx, connect.NewRequest(&domainv1.VerifyDomainRequest{OrganizationId: a.org, DomainId: dom.GetId()}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "no TXT record yet: %v", err)
	acme.SetTXT(t, dom.GetRecordName(), dom.GetRecordValue())
	acme.SetA(t, "shop.example.com", nodes.Addr(1))
	ver, err := domains.VerifyDomain(ctx, connect.NewRequest(&domainv1.VerifyDomainRequest{OrganizationId: a.org, DomainId: dom.GetId()}))
	require.NoError(t, err)
	require.True(t, ver.Msg.GetDomain().GetVerified())
	eventually(t, 2*time.Minute, "the domain's certificate issued", func() bool {
		l, err := domains.ListDomains(ctx, connect.NewRequest(&domainv1.ListDomainsRequest{OrganizationId: a.org, AppId: web.GetId()}))
		require.NoError(t, err)
		d := l.Msg.GetDomains()[0]
		require.NotEqual(t, domainv1.CertificateState_CERTIFICATE_STATE_FAILED, d.GetCertificateState(), d.GetError())
		return d.GetCertificateState() == domainv1.CertificateState_CERTIFICATE_STATE_ISSUED
	})
	roots := acme.Roots(t)
	eventually(t, 30*time.Second, "the app over HTTPS on its domain, trusting the ACME root", func() bool {
		body, code, err := edge.getTLS("shop.example.com", roots)
		return err == nil && code == http.StatusOK && strings.HasPrefix(body, "release=1 ")
	})
	_, code, err = edge.get("shop.example.com")
	require.NoError(t, err)
	require.Equal(t, http.StatusPermanentRedirect, code, "plain HTTP redirects to HTTPS once a certificate exists")

	// The other proof: a token the edge serves over HTTP once the name points at it.
	acme.SetA(t, "www.example.com", nodes.Addr(1))
	added, err = domains.AddDomain(ctx, connect.NewRequest(&domainv1.AddDomainRequest{OrganizationId: a.org, AppId: web.GetId(),
		Hostname: "www.example.com", Method: domainv1.VerificationMethod_VERIFICATION_METHOD_HTTP}))
	require.NoError(t, err)
	require.Equal(t, "http://www.example.com/.well-known/skypanel-challenge/"+added.Msg.GetDomain().GetToken(),
		added.Msg.GetDomain().GetRecordName())
	eventually(t, 30*time.Second, "www.example.com verified over HTTP", func() bool {
		v, err := domains.VerifyDomain(ctx, connect.NewRequest(&domainv1.VerifyDomainRequest{OrganizationId: a.org,
			DomainId: added.Msg.GetDomain().GetId()}))
		return err == nil && v.Msg.GetDomain().GetVerified()
	})
	phase("custom domain with an ACME certificate")

	// Renewal: once the certificate is within 30 days of expiry (its recorded expiry moved
	// there), the control plane orders a new one, which the edge then serves.
	issued, err := edge.certificate("shop.example.com", roots)
	require.NoError(t, err)
	_, err = c.env.Store.Pool().Exec(ctx, `UPDATE domains SET cert_expires_at = now() + interval '10 days'
		WHERE hostname = 'shop.example.com'`)
	require.NoError(t, err)
	eventually(t, 2*time.Minute, "a renewed certificate served by the edge", func() bool {
		cert, err := edge.certificate("shop.example.com", roots)
		return err == nil && cert.SerialNumber.Cmp(issued.SerialNumber) != 0
	})
	var expires time.Time
	require.NoError(t, c.env.Store.Pool().QueryRow(ctx, `SELECT cert_expires_at FROM domains WHERE hostname = 'shop.example.com'`).Scan(&expires))
	require.Greater(t, time.Until(expires), 30*24*time.Hour, "the renewed certificate's expiry is recorded")
	phase("certificate renewal")

	// 9. The control plane is killed in the middle of a deployment (as by kill -9: its
	// database sessions cut, its job left running): after it comes back the deployment
	// finishes (it never stays stuck).
	mid := a.update(t, web.GetId(), appSpec("4", 3))
	a.waitDeployment(t, mid, appv1.DeploymentState_DEPLOYMENT_STATE_ROLLING_OUT)
	c.env.Crash(t)
	a.waitDeploymentWithin(t, mid, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, 4*time.Minute)
	eventually(t, 30*time.Second, "release 4 answering after the restart", func() bool {
		body, _, err := edge.get(host)
		return err == nil && strings.HasPrefix(body, "release=4 ")
	})
	phase("control-plane crash mid-deploy")

	// 10. The balance runs out: after the grace period the app is scaled to 0 and the edge
	// answers with the suspended page; a top-up brings it back by itself.
	ws, err := billing.ListWallets(ctx, connect.NewRequest(&billingv1.ListWalletsRequest{Query: "acme"}))
	require.NoError(t, err)
	require.Len(t, ws.Msg.GetWallets(), 1)
	_, err = billing.AdjustWallet(ctx, connect.NewRequest(&billingv1.AdjustWalletRequest{OrganizationId: a.org,
		Amount: -ws.Msg.GetWallets()[0].GetWallet().GetBalance() - 100, Reason: "test: spend it all"}))
	require.NoError(t, err)
	eventually(t, 90*time.Second, "the edge answering with the suspended page", func() bool {
		body, code, err := edge.get(host)
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "suspended")
	})
	eventually(t, 60*time.Second, "no replica left running", func() bool {
		return len(a.runningReplicas(t, web.GetId())) == 0
	})
	require.Equal(t, appv1.AppStatus_APP_STATUS_SUSPENDED, a.app(t, web.GetId()).GetStatus())
	_, err = billing.CreditWallet(ctx, connect.NewRequest(&billingv1.CreditWalletRequest{OrganizationId: a.org,
		Amount: 5000, Currency: "USD", Reason: "test top-up"}))
	require.NoError(t, err)
	eventually(t, 90*time.Second, "release 4 answering again after the top-up", func() bool {
		body, _, err := edge.get(host)
		return err == nil && strings.HasPrefix(body, "release=4 ")
	})
	eventually(t, 60*time.Second, "the app resumed with its three replicas", func() bool {
		return len(a.runningReplicas(t, web.GetId())) == 3
	})
	phase("suspension when the balance runs out, resumption after a top-up")

	// 11. Delete: the service, its route and its domain go.
	_, err = a.apps.DeleteApp(ctx, connect.NewRequest(&appv1.DeleteAppRequest{OrganizationId: a.org, AppId: web.GetId()}))
	require.NoError(t, err)
	eventually(t, 60*time.Second, "the app gone", func() bool {
		_, err := a.apps.GetApp(ctx, connect.NewRequest(&appv1.GetAppRequest{OrganizationId: a.org, AppId: web.GetId()}))
		return connect.CodeOf(err) == connect.CodeNotFound
	})
	eventually(t, 30*time.Second, "the edge no longer routing the app", func() bool {
		_, code, err := edge.get(host)
		return err == nil && code == http.StatusNotFound
	})
	out, err = nodes.Docker(ctx, 1, "service", "ls", "--format", "{{.Name}}")
	require.NoError(t, err)
	require.NotContains(t, out, svcA)
	phase("delete")
}

// appSpec is the test workload as an app: release marks its answers.
func appSpec(release string, replicas int32) *appv1.AppSpec {
	return &appv1.AppSpec{Image: appImage, Port: 8080, Replicas: replicas, Command: []string{"/whoami", "app"},
		Env: []*appv1.EnvVar{{Name: "RELEASE", Value: release}},
		HealthCheck: &appv1.HealthCheck{Command: []string{"/whoami", "check"}, Interval: durationpb.New(time.Second),
			Timeout: durationpb.New(time.Second), Retries: 2}}
}

// importImage imports the workload binary as a one-file image on every node.
func importImage(t testing.TB, nodes *e2e.Nodes, bin []byte) {
	t.Helper()
	tarball := imageOf(t, bin)
	for i := 1; i <= nodes.N(); i++ {
		cmd := exec.CommandContext(t.Context(), "docker", "-H", nodes.DockerHost(i), "import",
			"--change", `ENTRYPOINT ["/whoami"]`, "-", appImage)
		cmd.Stdin = bytes.NewReader(tarball)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "import the image on node %d: %s", i, out)
	}
}

// tenant is a customer with an organization.
type tenant struct {
	org, token, plan string
	apps             appv1connect.AppServiceClient
}

func newTenant(t testing.TB, env *testenv.Env, email, orgName, plan string) *tenant {
	t.Helper()
	u := env.NewUser(t, email)
	org := env.NewOrg(t, u, orgName)
	return &tenant{org: org.String(), token: u.Token, plan: plan,
		apps: testenv.Client(env, appv1connect.NewAppServiceClient, u.Token)}
}

func (tn *tenant) create(t testing.TB, name string, spec *appv1.AppSpec) (*appv1.App, *appv1.Deployment) {
	t.Helper()
	resp, err := tn.apps.CreateApp(t.Context(), connect.NewRequest(&appv1.CreateAppRequest{OrganizationId: tn.org, Name: name,
		PlanId: tn.plan, Spec: spec}))
	require.NoError(t, err)
	return resp.Msg.GetApp(), resp.Msg.GetDeployment()
}

func (tn *tenant) update(t testing.TB, appID string, spec *appv1.AppSpec) *appv1.Deployment {
	t.Helper()
	resp, err := tn.apps.UpdateApp(t.Context(), connect.NewRequest(&appv1.UpdateAppRequest{OrganizationId: tn.org, AppId: appID, Spec: spec}))
	require.NoError(t, err)
	return resp.Msg.GetDeployment()
}

func (tn *tenant) app(t testing.TB, appID string) *appv1.App {
	t.Helper()
	resp, err := tn.apps.GetApp(t.Context(), connect.NewRequest(&appv1.GetAppRequest{OrganizationId: tn.org, AppId: appID}))
	require.NoError(t, err)
	return resp.Msg.GetApp()
}

func (tn *tenant) waitDeployment(t testing.TB, d *appv1.Deployment, want appv1.DeploymentState) *appv1.Deployment {
	t.Helper()
	return tn.waitDeploymentWithin(t, d, want, 3*time.Minute)
}

// waitDeploymentWithin waits for the deployment to reach want; an end state other than want
// fails at once.
func (tn *tenant) waitDeploymentWithin(t testing.TB, d *appv1.Deployment, want appv1.DeploymentState, timeout time.Duration) *appv1.Deployment {
	t.Helper()
	start := time.Now()
	var got *appv1.Deployment
	eventually(t, timeout, fmt.Sprintf("deployment %s (%s) %s", d.GetId(), d.GetKind(), want), func() bool {
		resp, err := tn.apps.GetDeployment(t.Context(), connect.NewRequest(&appv1.GetDeploymentRequest{OrganizationId: tn.org, DeploymentId: d.GetId()}))
		if err != nil {
			return false // the control plane may be restarting
		}
		got = resp.Msg.GetDeployment()
		if got.GetState() != want && got.GetFinishedAt() != nil {
			t.Fatalf("deployment %s ended %s, want %s: %s", d.GetId(), got.GetState(), want, got.GetMessage())
		}
		return got.GetState() == want
	})
	t.Logf("deployment %s (%s) %s after %s", d.GetId(), d.GetKind(), want, time.Since(start).Round(100*time.Millisecond))
	return got
}

func (tn *tenant) runningReplicas(t testing.TB, appID string) []*appv1.Replica {
	t.Helper()
	resp, err := tn.apps.ListReplicas(t.Context(), connect.NewRequest(&appv1.ListReplicasRequest{OrganizationId: tn.org, AppId: appID}))
	require.NoError(t, err)
	var out []*appv1.Replica
	for _, r := range resp.Msg.GetReplicas() {
		if r.GetState() == "running" && r.GetDesiredState() == "running" {
			out = append(out, r)
		}
	}
	return out
}

// requireLogsFromReplicas follows the app's logs until lines of every replica slot arrived.
func (tn *tenant) requireLogsFromReplicas(t testing.TB, appID string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	stream, err := tn.apps.StreamLogs(ctx, connect.NewRequest(&appv1.StreamLogsRequest{OrganizationId: tn.org, AppId: appID, Tail: 5, Follow: true}))
	require.NoError(t, err)
	defer stream.Close()
	slots := map[int32]int{}
	for stream.Receive() {
		for _, l := range stream.Msg().GetLines() {
			require.NotNil(t, l.GetAt(), "every line has its time")
			require.NotEmpty(t, l.GetTaskId())
			slots[l.GetReplica()]++
		}
		if len(slots) >= n {
			t.Logf("log lines by replica: %v", slots)
			return
		}
	}
	t.Fatalf("the log stream ended with lines of replicas %v only: %v", slots, stream.Err())
}

// edgeClient talks to the edge on the edge node, as a browser whose DNS points there would.
type edgeClient struct {
	addr string
}

func (e *edgeClient) client(port string, roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, net.JoinHostPort(e.addr, port))
			},
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (e *edgeClient) get(host string) (string, int, error) {
	return fetchBody(e.client("80", nil), "http://"+host+"/")
}

func (e *edgeClient) getTLS(host string, roots *x509.CertPool) (string, int, error) {
	return fetchBody(e.client("443", roots), "https://"+host+"/")
}

// certificate is the certificate the edge presents for host over TLS, verified against roots.
func (e *edgeClient) certificate(host string, roots *x509.CertPool) (*x509.Certificate, error) {
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort(e.addr, "443"),
		&tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func fetchBody(c *http.Client, url string) (string, int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// loadRun is a steady stream of requests through the edge.
type loadRun struct {
	stopCh   chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []string
}

type loadStats struct {
	ok, failed int64
	errs       []string
}

func (s loadStats) String() string {
	return fmt.Sprintf("%d ok, %d failed %v", s.ok, s.failed, s.errs)
}

// load sends rate requests a second for host until stop, from a few workers.
func (e *edgeClient) load(host string, rate int) *loadRun {
	l := &loadRun{stopCh: make(chan struct{})}
	client := e.client("80", nil)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	jobs := make(chan struct{}, rate)
	for range 8 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for range jobs {
				body, code, err := fetchBody(client, "http://"+host+"/")
				if err == nil && code == http.StatusOK && strings.HasPrefix(body, "release=") {
					l.ok.Add(1)
					continue
				}
				l.fail.Add(1)
				l.mu.Lock()
				if len(l.errs) < 10 {
					l.errs = append(l.errs, fmt.Sprintf("%s: %d %v %q", time.Now().Format("15:04:05.000"), code, err, body))
				}
				l.mu.Unlock()
			}
		}()
	}
	go func() {
		defer tick.Stop()
		defer close(jobs)
		for {
			select {
			case <-l.stopCh:
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default: // the workers are behind: count it as a failure to keep the rate honest
					l.fail.Add(1)
				}
			}
		}
	}()
	return l
}

func (l *loadRun) stop() loadStats {
	close(l.stopCh)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadStats{ok: l.ok.Load(), failed: l.fail.Load(), errs: l.errs}
}
