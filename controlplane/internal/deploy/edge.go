package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/workload"
)

// EdgeLabel marks the nodes that run the edge proxy.
const EdgeLabel = "edge"

// Domain verification over HTTP: the edge answers the token at this path.
const httpVerificationPrefix = "/.well-known/skypanel-challenge/"

// SyncEdges brings the edges of an app's cluster up to date.
func (d *Deployer) SyncEdges(ctx context.Context, appID uuid.UUID) error {
	app, err := d.opts.Store.AppByID(ctx, appID)
	if err != nil {
		// A deleted app: its cluster is unknown here; the periodic sync of every cluster
		// drops its routes.
		return d.SyncAllEdges(ctx)
	}
	return d.SyncCluster(ctx, app.ClusterID)
}

// SyncAllEdges brings the edges of every cluster up to date.
func (d *Deployer) SyncAllEdges(ctx context.Context) error {
	cs, err := d.opts.Store.Clusters(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := d.SyncCluster(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// SyncCluster sends the cluster's edge configuration to every edge node that does not have it
// yet (a change of routes, certificates or challenges; or a new edge node).
func (d *Deployer) SyncCluster(ctx context.Context, clusterID uuid.UUID) error {
	_, err := d.syncCluster(ctx, clusterID)
	return err
}

// sentCommand is an outbox command: the node and its sequence.
type sentCommand struct {
	node uuid.UUID
	seq  int64
}

// syncCluster is SyncCluster, returning the commands it queued.
func (d *Deployer) syncCluster(ctx context.Context, clusterID uuid.UUID) ([]sentCommand, error) {
	var sent []sentCommand
	err := d.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if err := q.LockEdgeSync(ctx, clusterID); err != nil {
			return err
		}
		edges, err := q.LabelledNodeIDs(ctx, clusterID, EdgeLabel)
		if err != nil {
			return err
		}
		if len(edges) == 0 {
			return nil
		}
		cfg, err := d.edgeConfig(ctx, q, clusterID)
		if err != nil {
			return err
		}
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		hash := hex.EncodeToString(sum[:])
		before, err := q.EdgeNodesSent(ctx, clusterID)
		if err != nil {
			return err
		}
		version := time.Now().UnixNano()
		for _, id := range edges {
			if before[id].ConfigHash == hash {
				continue
			}
			msg := proto.Clone(cfg).(*agentv1.EdgeConfigure)
			msg.Version = version
			seq, err := d.opts.Nodes.Enqueue(ctx, q, id, &agentv1.Command{Kind: &agentv1.Command_EdgeConfigure{EdgeConfigure: msg}})
			if err != nil {
				return err
			}
			sent = append(sent, sentCommand{node: id, seq: seq})
			if err := q.PutEdgeNodeSent(ctx, store.EdgeNodeSent{NodeID: id, ConfigHash: hash, Version: version}); err != nil {
				return err
			}
		}
		return nil
	})
	return sent, err
}

// waitApplied waits until the nodes acknowledged the commands (whatever their outcome).
func (d *Deployer) waitApplied(ctx context.Context, cmds []sentCommand, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, c := range cmds {
		for {
			row, err := d.opts.Store.NodeCommand(ctx, c.node, c.seq)
			if err != nil {
				return err
			}
			if row.AckedAt != nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("edge node %s did not apply its configuration within %s", c.node, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d.opts.Poll):
			}
		}
	}
	return nil
}

// edgeConfig is what every edge of a cluster serves: a route per app that runs a release and
// listens on a port (its default hostname and its verified domains), the certificates of those
// domains, the ACME and ownership challenges, and the organizations' networks to join.
func (d *Deployer) edgeConfig(ctx context.Context, q *store.Queries, clusterID uuid.UUID) (*agentv1.EdgeConfigure, error) {
	apps, err := q.AppsInCluster(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	domains, err := q.ClusterDomains(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	challenges, err := q.ACMEChallenges(ctx)
	if err != nil {
		return nil, err
	}
	byApp := map[uuid.UUID][]store.Domain{}
	ours := map[string]bool{}
	cfg := &agentv1.EdgeConfigure{}
	for _, dom := range domains {
		byApp[dom.AppID] = append(byApp[dom.AppID], dom)
		ours[dom.Hostname] = true
		if dom.VerifiedAt == nil && dom.Method == int16(2) {
			cfg.Challenges = append(cfg.Challenges, &agentv1.EdgeChallenge{Path: httpVerificationPrefix + dom.Token, Body: dom.Token})
		}
		if dom.CertPEM != "" {
			key, err := d.opts.Keyring.Open(dom.KeySealed, DomainKeyContext(dom.ID))
			if err != nil {
				return nil, fmt.Errorf("open key of %s: %w", dom.Hostname, err)
			}
			cfg.Certificates = append(cfg.Certificates, &agentv1.EdgeCertificate{Hosts: []string{dom.Hostname},
				CertPem: dom.CertPEM, KeyPem: string(key)})
		}
	}
	for _, c := range challenges {
		if ours[c.Hostname] {
			cfg.Challenges = append(cfg.Challenges, &agentv1.EdgeChallenge{Path: "/.well-known/acme-challenge/" + c.Token, Body: c.KeyAuth})
		}
	}
	networks := map[string]bool{}
	for _, app := range apps {
		// An app is routed from its first deployment on (its service may not run yet: the
		// edge answers 502 until a replica does), so that it answers as soon as it can.
		if app.Deleting {
			continue
		}
		spec, err := MaskedSpec(app.Spec)
		if err != nil {
			return nil, err
		}
		if spec.GetPort() == 0 {
			continue
		}
		upstream := fmt.Sprintf("%s:%d", workload.ServiceName(app.ID.String()), spec.GetPort())
		// The default hostname answers on HTTP and HTTPS (with the platform CA's certificate,
		// which browsers trust only when told to); custom domains, with publicly trusted
		// certificates, redirect HTTP to HTTPS.
		cfg.Routes = append(cfg.Routes, &agentv1.EdgeRoute{Hosts: []string{d.DefaultHostname(app)}, Upstream: upstream,
			Suspended: app.Suspended})
		var custom []string
		for _, dom := range byApp[app.ID] {
			if dom.VerifiedAt != nil {
				custom = append(custom, dom.Hostname)
			}
		}
		if len(custom) > 0 {
			cfg.Routes = append(cfg.Routes, &agentv1.EdgeRoute{Hosts: custom, Upstream: upstream,
				Suspended: app.Suspended, HttpsRedirect: true})
		}
		networks[workload.NetworkName(app.OrganizationID.String())] = true
	}
	if d.opts.Authority != nil && len(cfg.Routes) > 0 {
		c, err := d.opts.Authority.AppsCertificate(d.opts.AppsDomain)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = append(cfg.Certificates, &agentv1.EdgeCertificate{Hosts: []string{"*." + d.opts.AppsDomain},
			CertPem: c.CertPEM, KeyPem: c.KeyPEM})
	}
	for n := range networks {
		cfg.Networks = append(cfg.Networks, n)
	}
	sort.Strings(cfg.Networks)
	return cfg, nil
}

// DomainKeyContext binds a domain's sealed private key to the domain.
func DomainKeyContext(id uuid.UUID) string { return "domain-key:" + id.String() }

// EdgeConfig is what the cluster's edges are to serve now.
func (d *Deployer) EdgeConfig(ctx context.Context, clusterID uuid.UUID) (*agentv1.EdgeConfigure, error) {
	return d.edgeConfig(ctx, d.opts.Store.Queries, clusterID)
}

// Run keeps the edges in step (every interval, for new edge nodes and anything missed) until
// ctx ends.
func (d *Deployer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := d.SyncAllEdges(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("edge sync", "err", err)
		}
		if err := d.queueRenewals(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("queue certificate renewals", "err", err)
		}
		if err := d.opts.Store.PruneAppMetrics(ctx, time.Now().Add(-appMetricsRetention)); err != nil && ctx.Err() == nil {
			d.logger.Warn("prune app metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// appMetricsRetention is how long per-replica samples are kept.
const appMetricsRetention = 24 * time.Hour
