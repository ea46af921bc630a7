package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"skypanel/controlplane/internal/testenv"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/pki"
)

func TestClusterCreateListGetDelete(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	c := testenv.Client(env, clusterv1connect.NewClusterServiceClient, admin.Token)

	created, err := c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "eu-1"}))
	require.NoError(t, err)
	cl := created.Msg.GetCluster()
	require.Equal(t, clusterv1.ClusterState_CLUSTER_STATE_PENDING, cl.GetState())

	var sealed string
	require.NoError(t, env.Store.Pool().QueryRow(ctx, `SELECT gossip_key_sealed FROM clusters WHERE id = $1`, cl.GetId()).Scan(&sealed))
	require.True(t, strings.HasPrefix(sealed, "v1.test."), "the gossip key is sealed under the master key")

	_, err = c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "eu-1"}))
	requireConnectCode(t, err, connect.CodeAlreadyExists, "name")
	_, err = c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "d", DedicatedOrganizationId: "00000000-0000-0000-0000-000000000009"}))
	requireConnectCode(t, err, connect.CodeNotFound, "dedicated_organization_id")

	org := env.NewOrg(t, admin, "Acme")
	dedicated, err := c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "acme-only", DedicatedOrganizationId: org.String()}))
	require.NoError(t, err)
	require.Equal(t, org.String(), dedicated.Msg.GetCluster().GetDedicatedOrganizationId())

	list, err := c.ListClusters(ctx, connect.NewRequest(&clusterv1.ListClustersRequest{}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetClusters(), 2)

	// A cluster with a node cannot be deleted; an empty one can.
	_, err = env.Enroll(ctx, env.EnrollmentToken(t, admin, testenv.UUID(cl.GetId()), agentv1.NodeRole_NODE_ROLE_MANAGER, 1), testenv.Facts("m", "10.0.0.1"))
	require.NoError(t, err)
	_, err = c.DeleteCluster(ctx, connect.NewRequest(&clusterv1.DeleteClusterRequest{ClusterId: cl.GetId()}))
	requireConnectCode(t, err, connect.CodeFailedPrecondition, "still has nodes")
	_, err = c.DeleteCluster(ctx, connect.NewRequest(&clusterv1.DeleteClusterRequest{ClusterId: dedicated.Msg.GetCluster().GetId()}))
	require.NoError(t, err)
	_, err = c.GetCluster(ctx, connect.NewRequest(&clusterv1.GetClusterRequest{ClusterId: dedicated.Msg.GetCluster().GetId()}))
	requireConnectCode(t, err, connect.CodeNotFound, "cluster")

	got, err := c.GetCluster(ctx, connect.NewRequest(&clusterv1.GetClusterRequest{ClusterId: cl.GetId()}))
	require.NoError(t, err)
	require.EqualValues(t, 1, got.Msg.GetCluster().GetManagerCount())
}

func TestEnrollmentTokensCarryThePinAndASetupCommand(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	cluster := env.NewCluster(t, admin, "eu-1")
	c := testenv.Client(env, clusterv1connect.NewClusterServiceClient, admin.Token)

	resp, err := c.CreateEnrollmentToken(ctx, connect.NewRequest(&clusterv1.CreateEnrollmentTokenRequest{
		ClusterId: cluster.String(), Role: agentv1.NodeRole_NODE_ROLE_WORKER, Labels: map[string]string{"edge": "true"},
		Ttl: durationpb.New(2 * time.Hour), Description: "rack 4",
	}))
	require.NoError(t, err)
	tok, err := pki.ParseEnrollmentToken(resp.Msg.GetSecret())
	require.NoError(t, err)
	require.Equal(t, env.Server.Authority().Pin(), tok.CAPin)
	require.Contains(t, resp.Msg.GetSetupCommand(), env.URL+"/setup-worker.sh")
	require.Contains(t, resp.Msg.GetSetupCommand(), "--token "+resp.Msg.GetSecret())
	require.Contains(t, resp.Msg.GetSetupCommand(), "--agent-url "+env.AgentURL)
	require.EqualValues(t, 1, resp.Msg.GetToken().GetUsageLimit(), "single use by default")
	require.WithinDuration(t, time.Now().Add(2*time.Hour), resp.Msg.GetToken().GetExpiresAt().AsTime(), time.Minute)

	var stored []byte
	require.NoError(t, env.Store.Pool().QueryRow(ctx, `SELECT token_hash FROM enrollment_tokens`).Scan(&stored))
	require.Equal(t, tok.Hash(), stored, "only the hash is stored")

	for name, req := range map[string]*clusterv1.CreateEnrollmentTokenRequest{
		"ttl":   {ClusterId: cluster.String(), Role: agentv1.NodeRole_NODE_ROLE_WORKER, Ttl: durationpb.New(31 * 24 * time.Hour)},
		"role":  {ClusterId: cluster.String()},
		"label": {ClusterId: cluster.String(), Role: agentv1.NodeRole_NODE_ROLE_WORKER, Labels: map[string]string{"Bad Key": "x"}},
	} {
		_, err := c.CreateEnrollmentToken(ctx, connect.NewRequest(req))
		requireConnectCode(t, err, connect.CodeInvalidArgument, name)
	}

	list, err := c.ListEnrollmentTokens(ctx, connect.NewRequest(&clusterv1.ListEnrollmentTokensRequest{ClusterId: cluster.String()}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetTokens(), 1)
	require.Equal(t, map[string]string{"edge": "true"}, list.Msg.GetTokens()[0].GetLabels())

	_, err = c.RevokeEnrollmentToken(ctx, connect.NewRequest(&clusterv1.RevokeEnrollmentTokenRequest{TokenId: resp.Msg.GetToken().GetId()}))
	require.NoError(t, err)
	_, err = c.RevokeEnrollmentToken(ctx, connect.NewRequest(&clusterv1.RevokeEnrollmentTokenRequest{TokenId: resp.Msg.GetToken().GetId()}))
	requireConnectCode(t, err, connect.CodeNotFound, "enrollment token")
	_, err = env.Enroll(ctx, resp.Msg.GetSecret(), testenv.Facts("n", "10.0.0.2"))
	requireConnectCode(t, err, connect.CodeUnauthenticated, "revoked")
}

func TestADedicatedClusterIsBilledToItsOrganizationWhileItExists(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	admin := env.Admin(t)
	c := testenv.Client(env, clusterv1connect.NewClusterServiceClient, admin.Token)
	org := env.NewOrg(t, admin, "Acme")

	_, err := c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "shared", PricePerHour: 100}))
	requireConnectCode(t, err, connect.CodeInvalidArgument, "price_per_hour")
	_, err = c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "acme", DedicatedOrganizationId: org.String(),
		PricePerHour: -1}))
	requireConnectCode(t, err, connect.CodeInvalidArgument, "price_per_hour")

	created, err := c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "acme",
		DedicatedOrganizationId: org.String(), PricePerHour: 2500}))
	require.NoError(t, err)
	cl := created.Msg.GetCluster()
	require.EqualValues(t, 2500, cl.GetPricePerHour())
	require.Equal(t, "USD", cl.GetCurrency(), "the platform's currency for an organization without a wallet")
	runs, err := env.Store.BillableRuns(ctx, "cluster", testenv.UUID(cl.GetId()))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Nil(t, runs[0].EndedAt, "billed from its creation")
	require.EqualValues(t, 1, runs[0].Quantity)
	require.Equal(t, org, runs[0].OrganizationID)

	// The organization's wallet now exists in USD: another currency is refused.
	_, err = c.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: "acme-2",
		DedicatedOrganizationId: org.String(), PricePerHour: 100, Currency: "EUR"}))
	requireConnectCode(t, err, connect.CodeInvalidArgument, "currency")

	_, err = c.DeleteCluster(ctx, connect.NewRequest(&clusterv1.DeleteClusterRequest{ClusterId: cl.GetId()}))
	require.NoError(t, err)
	runs, err = env.Store.BillableRuns(ctx, "cluster", testenv.UUID(cl.GetId()))
	require.NoError(t, err)
	for _, r := range runs {
		// (A run shorter than a second is dropped rather than ended: never billed.)
		require.NotNil(t, r.EndedAt, "billed until its deletion, not after")
	}
}
