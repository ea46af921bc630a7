package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/pki"
)

// Enrollment token defaults and bounds.
const (
	defaultEnrollmentTTL = time.Hour
	maxEnrollmentTTL     = 30 * 24 * time.Hour
)

// GossipKeyContext is where a cluster's sealed gossip key is bound.
func GossipKeyContext(clusterID uuid.UUID) string { return "gossip:" + clusterID.String() }

// ClusterService implements clusterv1connect.ClusterServiceHandler: clusters and enrollment
// here, nodes in cluster_nodes.go.
type ClusterService struct {
	clusterv1connect.UnimplementedClusterServiceHandler
	opts Options
}

// CreateCluster creates a cluster, with a fresh gossip key sealed under the master key.
func (s *ClusterService) CreateCluster(ctx context.Context, req *connect.Request[clusterv1.CreateClusterRequest]) (*connect.Response[clusterv1.CreateClusterResponse], error) {
	name := strings.TrimSpace(req.Msg.GetName())
	if name == "" {
		return nil, auth.FieldError("name", "must not be blank")
	}
	c := store.Cluster{ID: uuid.New(), Name: name, OverlayEncryption: req.Msg.GetOverlayEncryption()}
	if id := req.Msg.GetDedicatedOrganizationId(); id != "" {
		orgID := uuid.MustParse(id) // validated as a UUID by the schema
		c.DedicatedOrganizationID = &orgID
	}
	price := req.Msg.GetPricePerHour()
	if price > 0 && c.DedicatedOrganizationID == nil {
		return nil, auth.FieldError("price_per_hour", "only a dedicated cluster is billed on its own; shared clusters bill their apps")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	c.GossipKeySealed = s.opts.Keyring.Seal(key, GossipKeyContext(c.ID))
	var created store.Cluster
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		created, err = q.CreateCluster(ctx, c)
		switch {
		case errors.Is(err, store.ErrConflict):
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("name: a cluster named %q exists", name))
		case errors.Is(err, store.ErrNotFound):
			return connect.NewError(connect.CodeNotFound, errors.New("dedicated_organization_id: no such organization"))
		case err != nil:
			return storeErr("cluster", err)
		}
		meta := map[string]string{"name": name, "overlay_encryption": fmt.Sprint(c.OverlayEncryption)}
		if c.DedicatedOrganizationID != nil {
			meta["dedicated_organization_id"] = c.DedicatedOrganizationID.String()
		}
		if price > 0 {
			currency, err := s.clusterCurrency(ctx, q, *c.DedicatedOrganizationID, req.Msg.GetCurrency())
			if err != nil {
				return err
			}
			err = billing.SetRunning(ctx, q, billing.Resource{Type: billing.ResourceCluster, ID: created.ID,
				OrganizationID: *c.DedicatedOrganizationID}, 1, price, currency, time.Now())
			if err != nil {
				return storeErr("billing", err)
			}
			meta["price_per_hour"], meta["currency"] = fmt.Sprint(price), currency
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "cluster.created", "cluster", created.ID.String(), meta))
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := s.clusterProto(ctx, created)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.CreateClusterResponse{Cluster: out}), nil
}

// clusterCurrency is the currency a dedicated cluster is billed in: the organization's
// wallet's; asked is refused when it differs.
func (s *ClusterService) clusterCurrency(ctx context.Context, q *store.Queries, orgID uuid.UUID, asked string) (string, error) {
	currency := s.opts.BillingCurrency
	w, err := q.Wallet(ctx, orgID)
	switch {
	case err == nil:
		currency = w.Currency
	case !errors.Is(err, store.ErrNotFound):
		return "", storeErr("wallet", err)
	case asked != "":
		currency = asked
	}
	if asked != "" && asked != currency {
		return "", auth.FieldError("currency", "the organization pays in "+currency)
	}
	return currency, nil
}

// clusterProto is c with its price, read from its open billable run.
func (s *ClusterService) clusterProto(ctx context.Context, c store.Cluster) (*clusterv1.Cluster, error) {
	out := clusterProto(c)
	if c.DedicatedOrganizationID == nil {
		return out, nil
	}
	runs, err := s.opts.Store.BillableRuns(ctx, string(billing.ResourceCluster), c.ID)
	if err != nil {
		return nil, storeErr("billing", err)
	}
	for _, r := range runs {
		if r.EndedAt == nil {
			out.PricePerHour, out.Currency = r.UnitPrice, r.Currency
		}
	}
	return out, nil
}

// ListClusters lists every cluster.
func (s *ClusterService) ListClusters(ctx context.Context, _ *connect.Request[clusterv1.ListClustersRequest]) (*connect.Response[clusterv1.ListClustersResponse], error) {
	cs, err := s.opts.Store.Clusters(ctx)
	if err != nil {
		return nil, storeErr("clusters", err)
	}
	out := &clusterv1.ListClustersResponse{}
	for _, c := range cs {
		pc, err := s.clusterProto(ctx, c)
		if err != nil {
			return nil, err
		}
		out.Clusters = append(out.Clusters, pc)
	}
	return connect.NewResponse(out), nil
}

// GetCluster returns one cluster.
func (s *ClusterService) GetCluster(ctx context.Context, req *connect.Request[clusterv1.GetClusterRequest]) (*connect.Response[clusterv1.GetClusterResponse], error) {
	c, err := s.opts.Store.ClusterByID(ctx, uuid.MustParse(req.Msg.GetClusterId()))
	if err != nil {
		return nil, storeErr("cluster", err)
	}
	out, err := s.clusterProto(ctx, c)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.GetClusterResponse{Cluster: out}), nil
}

// DeleteCluster deletes a cluster that has no nodes left.
func (s *ClusterService) DeleteCluster(ctx context.Context, req *connect.Request[clusterv1.DeleteClusterRequest]) (*connect.Response[clusterv1.DeleteClusterResponse], error) {
	id := uuid.MustParse(req.Msg.GetClusterId())
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		c, err := q.ClusterByID(ctx, id)
		if err != nil {
			return storeErr("cluster", err)
		}
		apps, err := q.AppsInCluster(ctx, id)
		if err != nil {
			return storeErr("apps", err)
		}
		if len(apps) > 0 {
			return failedPrecondition("cluster %s still runs %d apps: delete them first", c.Name, len(apps))
		}
		deleted, err := q.DeleteCluster(ctx, id)
		if err != nil {
			return storeErr("cluster", err)
		}
		if !deleted {
			return failedPrecondition("cluster %s still has nodes: remove them first", c.Name)
		}
		if c.DedicatedOrganizationID != nil {
			// Billed up to now; a cluster without a price has no run to end.
			err := billing.SetRunning(ctx, q, billing.Resource{Type: billing.ResourceCluster, ID: c.ID,
				OrganizationID: *c.DedicatedOrganizationID}, 0, 0, s.opts.BillingCurrency, time.Now())
			if err != nil && !errors.Is(err, billing.ErrCurrencyMismatch) {
				return storeErr("billing", err)
			}
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "cluster.deleted", "cluster", id.String(), map[string]string{"name": c.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.DeleteClusterResponse{}), nil
}

// CreateEnrollmentToken makes a token bound to the cluster and role, carrying the CA pin, and
// the setup command that uses it.
func (s *ClusterService) CreateEnrollmentToken(ctx context.Context, req *connect.Request[clusterv1.CreateEnrollmentTokenRequest]) (*connect.Response[clusterv1.CreateEnrollmentTokenResponse], error) {
	p := mustPrincipal(ctx)
	ttl := defaultEnrollmentTTL
	if d := req.Msg.GetTtl(); d != nil {
		ttl = d.AsDuration()
	}
	limit := int(req.Msg.GetUsageLimit())
	if limit == 0 {
		limit = 1
	}
	tok := pki.NewEnrollmentToken(s.opts.Authority.Pin())
	var created store.EnrollmentToken
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		c, err := q.ClusterByID(ctx, uuid.MustParse(req.Msg.GetClusterId()))
		if err != nil {
			return storeErr("cluster", err)
		}
		created, err = q.CreateEnrollmentToken(ctx, store.EnrollmentToken{
			ClusterID: c.ID, Role: int16(req.Msg.GetRole()), Labels: req.Msg.GetLabels(), UsageLimit: limit,
			Description: strings.TrimSpace(req.Msg.GetDescription()), ExpiresAt: time.Now().Add(ttl),
		}, tok.Hash(), p.UserID)
		if err != nil {
			return storeErr("cluster", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "cluster.enrollment_token.created", "enrollment_token", created.ID.String(),
			map[string]string{"cluster_id": c.ID.String(), "role": nodeRoleName(created.Role), "usage_limit": fmt.Sprint(limit),
				"expires_at": created.ExpiresAt.UTC().Format(time.RFC3339)}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.CreateEnrollmentTokenResponse{
		Token: enrollmentTokenProto(created), Secret: tok.String(), SetupCommand: s.setupCommand(tok.String()),
	}), nil
}

// setupCommand is the one-liner an admin runs as root on the new node.
func (s *ClusterService) setupCommand(token string) string {
	return fmt.Sprintf("curl -fsSL %s/setup-worker.sh | sh -s -- --token %s --agent-url %s",
		s.opts.PublicURL, token, s.opts.AgentURL)
}

// ListEnrollmentTokens lists a cluster's tokens (never their secrets).
func (s *ClusterService) ListEnrollmentTokens(ctx context.Context, req *connect.Request[clusterv1.ListEnrollmentTokensRequest]) (*connect.Response[clusterv1.ListEnrollmentTokensResponse], error) {
	ts, err := s.opts.Store.EnrollmentTokens(ctx, uuid.MustParse(req.Msg.GetClusterId()))
	if err != nil {
		return nil, storeErr("enrollment tokens", err)
	}
	out := &clusterv1.ListEnrollmentTokensResponse{}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, enrollmentTokenProto(t))
	}
	return connect.NewResponse(out), nil
}

// RevokeEnrollmentToken stops a token from enrolling more nodes (enrolled ones stay).
func (s *ClusterService) RevokeEnrollmentToken(ctx context.Context, req *connect.Request[clusterv1.RevokeEnrollmentTokenRequest]) (*connect.Response[clusterv1.RevokeEnrollmentTokenResponse], error) {
	id := uuid.MustParse(req.Msg.GetTokenId())
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		t, err := q.RevokeEnrollmentToken(ctx, id)
		if err != nil {
			return storeErr("live enrollment token", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "cluster.enrollment_token.revoked", "enrollment_token", id.String(),
			map[string]string{"cluster_id": t.ClusterID.String()}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&clusterv1.RevokeEnrollmentTokenResponse{}), nil
}

func clusterProto(c store.Cluster) *clusterv1.Cluster {
	out := &clusterv1.Cluster{
		Id: c.ID.String(), Name: c.Name, OverlayEncryption: c.OverlayEncryption, SwarmId: c.SwarmID, Error: c.Error,
		ManagerCount: int32(c.Managers), WorkerCount: int32(c.Workers), ReadyCount: int32(c.Ready), CreatedAt: ts(c.CreatedAt),
	}
	switch c.State {
	case "pending":
		out.State = clusterv1.ClusterState_CLUSTER_STATE_PENDING
	case "initializing":
		out.State = clusterv1.ClusterState_CLUSTER_STATE_INITIALIZING
	case "active":
		out.State = clusterv1.ClusterState_CLUSTER_STATE_ACTIVE
	case "error":
		out.State = clusterv1.ClusterState_CLUSTER_STATE_ERROR
	}
	if c.DedicatedOrganizationID != nil {
		out.DedicatedOrganizationId = c.DedicatedOrganizationID.String()
	}
	return out
}

func enrollmentTokenProto(t store.EnrollmentToken) *clusterv1.EnrollmentToken {
	return &clusterv1.EnrollmentToken{
		Id: t.ID.String(), ClusterId: t.ClusterID.String(), Role: agentv1.NodeRole(t.Role), Labels: t.Labels,
		UsageLimit: int32(t.UsageLimit), UsageCount: int32(t.UsageCount), ExpiresAt: ts(t.ExpiresAt),
		CreatedAt: ts(t.CreatedAt), CreatedByEmail: t.CreatedByEmail, Revoked: t.RevokedAt != nil, Description: t.Description,
	}
}

func nodeRoleName(role int16) string {
	if agentv1.NodeRole(role) == agentv1.NodeRole_NODE_ROLE_MANAGER {
		return "manager"
	}
	return "worker"
}
