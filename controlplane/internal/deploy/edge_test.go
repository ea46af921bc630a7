package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/workload"
)

// edgeWorld is a cluster with one organization's apps, seeded straight into the store.
type edgeWorld struct {
	d       *deploy.Deployer
	keys    *secrets.Keyring
	st      *store.Store
	cluster uuid.UUID
	org     uuid.UUID
	plan    uuid.UUID
}

func newEdgeWorld(t *testing.T) *edgeWorld {
	t.Helper()
	st := testenv.Store(t)
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1"})
	require.NoError(t, err)
	w := &edgeWorld{st: st, keys: keys, d: deploy.New(deploy.Options{Store: st, Keyring: keys, AppsDomain: "apps.test"}),
		cluster: uuid.New(), org: uuid.New()}
	ctx := context.Background()
	_, err = st.Pool().Exec(ctx, `INSERT INTO organizations (id, name, slug) VALUES ($1, 'Acme', 'acme')`, w.org)
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `INSERT INTO clusters (id, name, gossip_key_sealed, state) VALUES ($1, 'c', 'x', 'active')`, w.cluster)
	require.NoError(t, err)
	p, err := st.CreatePlan(ctx, store.Plan{Name: "small", CPUMillis: 100, MemoryMiB: 64, Currency: "USD", MaxReplicas: 3, MaxApps: 5})
	require.NoError(t, err)
	w.plan = p.ID
	return w
}

// app adds an app listening on port, with a release when released.
func (w *edgeWorld) app(t *testing.T, name string, port int32, released bool) store.App {
	t.Helper()
	ctx := context.Background()
	spec, err := proto.Marshal(&appv1.AppSpec{Image: "img:1", Port: port, Replicas: 1})
	require.NoError(t, err)
	a, err := w.st.InsertApp(ctx, store.App{ID: uuid.New(), OrganizationID: w.org, Name: name, PlanID: w.plan,
		ClusterID: w.cluster, Spec: spec, Replicas: 1})
	require.NoError(t, err)
	if released {
		require.NoError(t, w.st.InTx(ctx, func(q *store.Queries) error {
			r, err := q.InsertRelease(ctx, store.Release{AppID: a.ID, OrganizationID: w.org, Image: "img:1", Spec: spec, PlanID: w.plan})
			if err != nil {
				return err
			}
			a.CurrentReleaseID = &r.ID
			return q.UpdateApp(ctx, a)
		}))
	}
	return a
}

func TestEdgeConfigRoutesAppsDomainsAndChallenges(t *testing.T) {
	w := newEdgeWorld(t)
	ctx := context.Background()
	web := w.app(t, "web", 8080, true)
	w.app(t, "worker", 0, true) // no port: nothing to route
	fresh := w.app(t, "fresh", 3000, false)

	// Domains: one verified with a certificate, one waiting for its HTTP proof, one waiting
	// for its TXT record.
	shop, err := w.st.InsertDomain(ctx, store.Domain{AppID: web.ID, OrganizationID: w.org, Hostname: "shop.example.com", Method: deploy.MethodDNSTXT, Token: "t1"})
	require.NoError(t, err)
	require.NoError(t, w.st.SetDomainVerified(ctx, shop.ID))
	require.NoError(t, w.st.SetDomainCertificate(ctx, shop.ID, "CERT", w.keys.Seal([]byte("KEY"), deploy.DomainKeyContext(shop.ID)),
		time.Now().Add(90*24*time.Hour)))
	_, err = w.st.InsertDomain(ctx, store.Domain{AppID: web.ID, OrganizationID: w.org, Hostname: "www.example.com", Method: deploy.MethodHTTP, Token: "t2"})
	require.NoError(t, err)
	_, err = w.st.InsertDomain(ctx, store.Domain{AppID: fresh.ID, OrganizationID: w.org, Hostname: "new.example.com", Method: deploy.MethodDNSTXT, Token: "t3"})
	require.NoError(t, err)
	require.NoError(t, w.st.PutACMEChallenge(ctx, store.ACMEChallenge{Token: "acme1", KeyAuth: "acme1.thumb", Hostname: "shop.example.com"}))
	require.NoError(t, w.st.PutACMEChallenge(ctx, store.ACMEChallenge{Token: "other", KeyAuth: "x", Hostname: "elsewhere.example.org"}))

	cfg, err := w.d.EdgeConfig(ctx, w.cluster)
	require.NoError(t, err)
	type route struct {
		hosts    []string
		upstream string
		redirect bool
	}
	var routes []route
	for _, r := range cfg.GetRoutes() {
		routes = append(routes, route{r.GetHosts(), r.GetUpstream(), r.GetHttpsRedirect()})
	}
	require.ElementsMatch(t, []route{
		{[]string{"web-acme.apps.test"}, workload.ServiceName(web.ID.String()) + ":8080", false},
		{[]string{"shop.example.com"}, workload.ServiceName(web.ID.String()) + ":8080", true},
		// A first deployment is routed before it succeeds; unverified domains are not.
		{[]string{"fresh-acme.apps.test"}, workload.ServiceName(fresh.ID.String()) + ":3000", false},
	}, routes)
	require.Len(t, cfg.GetCertificates(), 1)
	require.Equal(t, "KEY", cfg.GetCertificates()[0].GetKeyPem(), "the key is opened for the edge")
	var paths []string
	for _, c := range cfg.GetChallenges() {
		paths = append(paths, c.GetPath()+"="+c.GetBody())
	}
	require.ElementsMatch(t, []string{"/.well-known/skypanel-challenge/t2=t2", "/.well-known/acme-challenge/acme1=acme1.thumb"}, paths,
		"the HTTP proof of the unverified domain and the cluster's own ACME answers only")
	require.Equal(t, []string{workload.NetworkName(w.org.String())}, cfg.GetNetworks())

	// Renewal: only verified domains without a certificate, or whose certificate ends within
	// the window, are due.
	due, err := w.st.DomainsDueForCertificate(ctx, time.Now().Add(30*24*time.Hour))
	require.NoError(t, err)
	require.Empty(t, due, "the certificate has 90 days left")
	due, err = w.st.DomainsDueForCertificate(ctx, time.Now().Add(100*24*time.Hour))
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.Equal(t, "shop.example.com", due[0].Hostname)
}
