// Package deploy runs apps on the clusters: it places apps (the scheduler), turns each deploy,
// scale, restart or rollback into a deployment that a durable job walks through its states
// by sending commands to a manager agent and reading what the agents report, keeps the
// edges' routes in step with the apps, and takes in the agents' workload reports.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"skypanel/controlplane/internal/ca"
	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
)

// Options are the Deployer's dependencies and settings.
type Options struct {
	Store   *store.Store
	Keyring *secrets.Keyring
	Nodes   *nodes.Manager
	Logger  *slog.Logger
	// AppsDomain is the parent of every app's default hostname: <app>-<org>.<AppsDomain>.
	AppsDomain string
	// StepTimeout bounds how long a deployment waits in one state (a manager to pick up a
	// command, replicas to become healthy) before it fails.
	StepTimeout time.Duration
	// Monitor is how long Swarm watches each new task before the next one is replaced.
	Monitor time.Duration
	// Poll is how often a waiting deployment looks again.
	Poll time.Duration
	// Verifier checks custom domains' ownership proofs.
	Verifier Verifier
	// ACME is where custom domains' certificates come from.
	ACME ACME
	// Authority issues the certificate of the apps' default hostnames (nil: none).
	Authority *ca.Authority
}

// Deployer starts and carries deployments.
type Deployer struct {
	opts   Options
	jobs   *river.Client[pgx.Tx]
	logger *slog.Logger
	logs   logStreams
}

// New returns a Deployer. Its jobs client is set with SetJobs once the river client (which
// needs the Deployer's worker) exists.
func New(opts Options) *Deployer {
	if opts.StepTimeout == 0 {
		opts.StepTimeout = 5 * time.Minute
	}
	if opts.Monitor == 0 {
		opts.Monitor = 5 * time.Second
	}
	if opts.Poll == 0 {
		opts.Poll = 100 * time.Millisecond
	}
	return &Deployer{opts: opts, logger: opts.Logger}
}

// SetJobs gives the Deployer the job client it enqueues deployments with.
func (d *Deployer) SetJobs(jobs *river.Client[pgx.Tx]) { d.jobs = jobs }

// Verifier checks custom domains' ownership proofs.
func (d *Deployer) Verifier() Verifier { return d.opts.Verifier }

// AppsDomain is the parent domain of default hostnames.
func (d *Deployer) AppsDomain() string { return d.opts.AppsDomain }

// DefaultHostname is an app's hostname under the apps domain.
func (d *Deployer) DefaultHostname(app store.App) string {
	return app.Name + "-" + app.OrganizationSlug + "." + d.opts.AppsDomain
}

// Request is a deployment to start.
type Request struct {
	App     store.App
	Release store.Release
	// Kind is deploy, rollback, scale, restart, stop, start or delete.
	Kind     string
	Replicas int32
	Message  string
	By       *uuid.UUID
}

// Start records a deployment and queues the job that carries it, in the caller's
// transaction (which holds the app's lock). Open deployments of the app are superseded: the
// newest spec wins, and their jobs stop at their next step.
func (d *Deployer) Start(ctx context.Context, q *store.Queries, r Request) (store.Deployment, error) {
	open, err := q.OpenDeployments(ctx, r.App.ID)
	if err != nil {
		return store.Deployment{}, err
	}
	for _, o := range open {
		if _, err := q.AdvanceDeployment(ctx, o.ID, store.DeploymentStep{State: "superseded",
			Message: "a newer deployment took over"}); err != nil {
			return store.Deployment{}, err
		}
	}
	dep, err := q.InsertDeployment(ctx, store.Deployment{AppID: r.App.ID, OrganizationID: r.App.OrganizationID,
		ReleaseID: r.Release.ID, Kind: r.Kind, Replicas: r.Replicas, Message: r.Message, CreatedBy: r.By})
	if err != nil {
		return store.Deployment{}, err
	}
	if d.jobs == nil {
		return store.Deployment{}, errors.New("start deployment: no job client")
	}
	if _, err := d.jobs.InsertTx(ctx, q.Tx(), StepArgs{DeploymentID: dep.ID}, nil); err != nil {
		return store.Deployment{}, fmt.Errorf("start deployment: %w", err)
	}
	return dep, nil
}
