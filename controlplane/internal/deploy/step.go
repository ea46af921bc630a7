package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/workload"
)

// A deployment walks these states; each step of the job looks at where it is, does what that
// state needs (send a command, read a report) and either moves on or looks again later.
//
//	pending → preparing (the organization's network, on a manager)
//	        → applying (the service spec, on the same manager)
//	        → rolling_out (Swarm replaces tasks; the manager reports them)
//	        → succeeded | failed | rolled_back     (or superseded by a newer deployment)
//
// A delete goes pending → applying (remove the service) → succeeded, and removes the app.
// Every step is a short transaction that locks the deployment, so a crash between steps loses
// nothing, and commands are idempotent on the agent, so a step repeated after a crash has no
// second effect.

// StepArgs is the durable job that carries one deployment.
type StepArgs struct {
	DeploymentID uuid.UUID `json:"deployment_id"`
}

// Kind implements river.JobArgs.
func (StepArgs) Kind() string { return "deploy.step" }

// InsertOpts: one job per deployment; errors (a database hiccup) are retried.
func (StepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 50, Queue: river.QueueDefault}
}

// Worker runs deployment steps.
type Worker struct {
	river.WorkerDefaults[StepArgs]
	d *Deployer
}

// Worker returns the job worker that carries the Deployer's deployments.
func (d *Deployer) Worker() *Worker { return &Worker{d: d} }

// workSlice is how long one run of the job walks a deployment before handing it back to
// the queue (so a crash leaves it stuck for at most the rescue delay, and other jobs get turns).
const workSlice = 15 * time.Second

// Timeout bounds one run of the job: a slice and its last step.
func (w *Worker) Timeout(*river.Job[StepArgs]) time.Duration { return workSlice + 10*time.Second }

// Work walks the deployment step by step for up to a slice, then puts it back in the queue
// to go on at once.
func (w *Worker) Work(ctx context.Context, job *river.Job[StepArgs]) error {
	start := time.Now()
	for {
		again, acked, err := w.d.Step(ctx, job.Args.DeploymentID)
		if err != nil || again == 0 {
			return err
		}
		if time.Since(start) > workSlice {
			return river.JobSnooze(0)
		}
		t := time.NewTimer(again)
		select {
		case <-ctx.Done():
			t.Stop()
			return river.JobSnooze(0)
		case <-t.C:
		case <-acked:
			t.Stop()
		}
	}
}

// Step advances a deployment by one step. It returns how long to wait before the next one,
// zero when the deployment has ended; and, while the deployment waits for a node's answer
// to a command, a channel that closes when a replica announces one of that node's answers
// (the next step need not wait the whole time then).
func (d *Deployer) Step(ctx context.Context, id uuid.UUID) (time.Duration, <-chan struct{}, error) {
	var again time.Duration
	var acked <-chan struct{}
	var ended *store.Deployment
	applied := false // a first deployment's spec was just sent: route the app now
	var appID uuid.UUID
	err := d.opts.Store.InTx(ctx, func(q *store.Queries) error {
		dep, err := q.LockDeployment(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the app was deleted, and its deployments with it
		}
		if err != nil {
			return err
		}
		if dep.Finished() {
			return nil
		}
		app, err := q.AppByID(ctx, dep.AppID)
		if err != nil {
			return err
		}
		appID = app.ID
		if waitsForAnswer(dep) {
			// Taken before the step reads the command, so an answer recorded after that
			// read still wakes the next step.
			acked = d.opts.Nodes.AckSignal(*dep.NodeID)
		}
		next, err := d.step(ctx, q, app, dep)
		if err != nil {
			return err
		}
		if next.State != "" {
			dep, err = q.AdvanceDeployment(ctx, dep.ID, next)
			if err != nil {
				return err
			}
		}
		if dep.Finished() {
			ended = &dep
			return d.finish(ctx, q, app, dep)
		}
		applied = next.State == "applying" && dep.Kind != "delete" && app.CurrentReleaseID == nil
		switch {
		case !waitsForAnswer(dep):
			acked = nil
		case next.NodeID != nil:
			// A command was just queued: the node cannot answer it before this commits.
			acked = d.opts.Nodes.AckSignal(*dep.NodeID)
		}
		again = d.opts.Poll
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("deployment %s: %w", id, err)
	}
	if applied {
		if err := d.SyncEdges(ctx, appID); err != nil {
			d.logger.Warn("edge sync after applying", "deployment_id", id, "err", err)
		}
	}
	if ended != nil {
		d.logger.Info("deployment ended", "deployment_id", id, "state", ended.State, "message", ended.Message)
		if err := d.SyncEdges(ctx, ended.AppID); err != nil {
			d.logger.Warn("edge sync after deployment", "deployment_id", id, "err", err)
		}
	}
	return again, acked, nil
}

// waitsForAnswer tells a deployment whose next step waits for its manager's answer to a
// command.
func waitsForAnswer(dep store.Deployment) bool {
	return dep.NodeID != nil && (dep.State == "preparing" || dep.State == "applying")
}

// step decides the next state of an open deployment; a zero step means "not yet".
func (d *Deployer) step(ctx context.Context, q *store.Queries, app store.App, dep store.Deployment) (store.DeploymentStep, error) {
	since := enteredState(dep)
	waited := time.Since(since)
	switch dep.State {
	case "pending":
		manager, err := d.pickManager(ctx, q, app.ClusterID)
		if err != nil {
			return store.DeploymentStep{}, err
		}
		if manager == nil {
			if waited > d.opts.StepTimeout {
				return store.DeploymentStep{State: "failed", Message: "no manager node of the cluster is ready"}, nil
			}
			return store.DeploymentStep{State: "pending", Message: "waiting for a manager node of the cluster"}, nil
		}
		if dep.Kind == "delete" {
			return d.send(ctx, q, *manager, "applying", "removing the service",
				&agentv1.Command{Kind: &agentv1.Command_ServiceRemove{ServiceRemove: &agentv1.ServiceRemove{
					ServiceName: workload.ServiceName(app.ID.String())}}})
		}
		return d.send(ctx, q, *manager, "preparing", "making the organization's network ready", d.networkCommand(ctx, q, app))
	case "preparing", "applying":
		cmd, err := q.NodeCommand(ctx, *dep.NodeID, dep.CommandSeq)
		if err != nil {
			return store.DeploymentStep{}, err
		}
		switch {
		case cmd.AckedAt == nil:
			if waited > d.opts.StepTimeout {
				// The manager went quiet: start over on another one (commands are idempotent).
				return store.DeploymentStep{State: "pending", Message: "the manager did not answer; trying another"}, nil
			}
			return store.DeploymentStep{}, nil
		case cmd.OK == nil:
			// Acknowledged only by a later command: its outcome is unknown, so send it again.
			return d.resend(ctx, q, dep, cmd)
		case !*cmd.OK:
			return store.DeploymentStep{State: "failed", Message: cmd.Error}, nil
		}
		if dep.Kind == "delete" {
			return store.DeploymentStep{State: "succeeded", Message: "service removed"}, nil
		}
		if dep.State == "preparing" {
			apply, err := d.applyCommand(ctx, q, app, dep)
			if err != nil {
				return store.DeploymentStep{State: "failed", Message: err.Error()}, nil
			}
			return d.send(ctx, q, store.Node{ID: *dep.NodeID}, "applying", "sending the service spec", apply)
		}
		if err := recordDigest(ctx, q, dep, cmd.Output); err != nil {
			return store.DeploymentStep{}, err
		}
		return store.DeploymentStep{State: "rolling_out", Message: "Swarm is starting the new replicas"}, nil
	case "rolling_out":
		return d.rollout(ctx, q, app, dep, since, waited)
	}
	return store.DeploymentStep{State: "failed", Message: "unknown state " + dep.State}, nil
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// recordDigest keeps, on the deployment's release, the digest the manager pinned its image to
// (service_apply's output: {"image_digest": "sha256:..."}), so that a rollback to the release
// runs the same image even after its tag moved.
func recordDigest(ctx context.Context, q *store.Queries, dep store.Deployment, output string) error {
	var out struct {
		ImageDigest string `json:"image_digest"`
	}
	if json.Unmarshal([]byte(output), &out) != nil || !sha256Digest.MatchString(out.ImageDigest) {
		return nil
	}
	return q.SetReleaseImageDigest(ctx, dep.ReleaseID, out.ImageDigest)
}

// enteredState is when the deployment entered its current state: the first of the latest
// events in that state (progress messages within a state do not restart its clock, so a
// state's timeout holds and a report made since it began counts).
func enteredState(dep store.Deployment) time.Time {
	since := dep.UpdatedAt
	for i := len(dep.Events) - 1; i >= 0 && dep.Events[i].State == dep.State; i-- {
		since = dep.Events[i].At
	}
	return since
}

// rollout reads the manager's latest report of the service to see how the update goes.
func (d *Deployer) rollout(ctx context.Context, q *store.Queries, app store.App, dep store.Deployment, since time.Time, waited time.Duration) (store.DeploymentStep, error) {
	svc, err := q.AppServiceOf(ctx, app.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && svc.ReportedAt.Before(since)) {
		if waited > d.opts.StepTimeout {
			return store.DeploymentStep{State: "failed", Message: "no report of the service came from the cluster"}, nil
		}
		return store.DeploymentStep{}, nil
	}
	if err != nil {
		return store.DeploymentStep{}, err
	}
	tasks, err := Tasks(svc)
	if err != nil {
		return store.DeploymentStep{}, err
	}
	mine := dep.ID.String()
	running, started := 0, false
	for _, t := range tasks {
		if t.GetDeploymentId() != mine {
			continue
		}
		started = true
		if t.GetState() == "running" && t.GetDesiredState() == "running" {
			running++
		}
	}
	// Swarm gave up on this deployment's spec and went back to the one before: the service
	// is rolling back, its spec is not ours, and tasks of ours existed (a report from before
	// our spec, showing an older rollback, has none).
	rolledBack := strings.HasPrefix(svc.UpdateState, "rollback_") && svc.DeploymentID != mine &&
		(started || svc.PreviousDeploymentID == mine)
	switch {
	case rolledBack:
		if svc.UpdateState == "rollback_started" {
			return store.DeploymentStep{State: "rolling_out", Message: "rolling back: " + svc.UpdateMessage}, nil
		}
		msg := "the new release failed its health check; Swarm went back to the previous one"
		if svc.UpdateMessage != "" {
			msg += ": " + svc.UpdateMessage
		}
		return store.DeploymentStep{State: "rolled_back", Message: msg, AutomaticRollback: true}, nil
	case svc.DeploymentID != mine:
		// The report predates our spec: wait for the next one.
	case svc.UpdateState == "paused":
		return store.DeploymentStep{State: "failed", Message: "the update stopped: " + svc.UpdateMessage}, nil
	case svc.UpdateState != "updating" && svc.UpdateState != "rollback_started" && running >= int(dep.Replicas) &&
		(dep.Replicas > 0 || liveTasks(tasks) == 0):
		return store.DeploymentStep{State: "succeeded", Message: fmt.Sprintf("%d of %d replicas running", running, dep.Replicas)}, nil
	}
	if waited > d.opts.StepTimeout {
		return store.DeploymentStep{State: "failed", Message: fmt.Sprintf("timed out with %d of %d replicas running%s",
			running, dep.Replicas, taskErrors(tasks))}, nil
	}
	msg := fmt.Sprintf("%d of %d replicas running", running, dep.Replicas)
	if dep.Message == msg {
		return store.DeploymentStep{}, nil
	}
	return store.DeploymentStep{State: "rolling_out", Message: msg}, nil
}

func liveTasks(tasks []*agentv1.TaskStatus) int {
	n := 0
	for _, t := range tasks {
		if t.GetDesiredState() == "running" {
			n++
		}
	}
	return n
}

func taskErrors(tasks []*agentv1.TaskStatus) string {
	for _, t := range tasks {
		if t.GetError() != "" {
			return " (" + t.GetError() + ")"
		}
	}
	return ""
}

// Tasks reads the task list of a service report.
func Tasks(svc store.AppService) ([]*agentv1.TaskStatus, error) { return decodeTasks(svc.Tasks) }

func decodeTasks(raw []byte) ([]*agentv1.TaskStatus, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	out := make([]*agentv1.TaskStatus, 0, len(items))
	for _, it := range items {
		t := &agentv1.TaskStatus{}
		if err := protojson.Unmarshal(it, t); err != nil {
			return nil, fmt.Errorf("read task: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// finish applies a deployment's end to its app and to billing: a succeeded deployment's
// release becomes the current one and its replicas are billed from now; a failed or rolled
// back one leaves what ran before running (Swarm went back to it), so the app's spec, plan and
// replicas go back to the current release's and billing is unchanged. A succeeded delete
// stops billing and removes the app.
func (d *Deployer) finish(ctx context.Context, q *store.Queries, app store.App, dep store.Deployment) error {
	switch {
	case dep.State == "succeeded" && dep.Kind == "delete":
		if err := d.billRunning(ctx, q, app, 0); err != nil {
			return err
		}
		return q.DeleteApp(ctx, app.ID)
	case dep.State == "succeeded":
		id := dep.ReleaseID
		app.CurrentReleaseID = &id
		if err := q.UpdateApp(ctx, app); err != nil {
			return err
		}
		return d.billRunning(ctx, q, app, dep.Replicas)
	case dep.State == "superseded" || dep.Kind == "delete":
		return nil
	}
	if app.CurrentReleaseID != nil && *app.CurrentReleaseID != dep.ReleaseID {
		cur, err := q.Release(ctx, app.OrganizationID, *app.CurrentReleaseID)
		if err != nil {
			return err
		}
		app.Spec, app.PlanID = cur.Spec, cur.PlanID
	}
	last, err := q.LastSucceededDeployment(ctx, app.ID)
	switch {
	case err == nil:
		app.Replicas = last.Replicas
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return q.UpdateApp(ctx, app)
}

// pickManager returns a ready manager of the cluster, preferring one whose session is on this
// replica; nil when none is ready.
func (d *Deployer) pickManager(ctx context.Context, q *store.Queries, clusterID uuid.UUID) (*store.Node, error) {
	ns, err := q.ReadyManagers(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	var pick *store.Node
	for i := range ns {
		n := &ns[i]
		if pick == nil || (d.opts.Nodes.Connected(n.ID) && !d.opts.Nodes.Connected(pick.ID)) {
			pick = n
		}
	}
	return pick, nil
}

// send queues cmd for the node and moves the deployment to state, waiting for its answer.
func (d *Deployer) send(ctx context.Context, q *store.Queries, n store.Node, state, msg string, cmd *agentv1.Command) (store.DeploymentStep, error) {
	seq, err := d.opts.Nodes.Enqueue(ctx, q, n.ID, cmd)
	if err != nil {
		return store.DeploymentStep{}, err
	}
	id := n.ID
	return store.DeploymentStep{State: state, Message: msg, NodeID: &id, CommandSeq: seq}, nil
}

func (d *Deployer) resend(ctx context.Context, q *store.Queries, dep store.Deployment, cmd store.NodeCommand) (store.DeploymentStep, error) {
	c := &agentv1.Command{}
	if err := proto.Unmarshal(cmd.Payload, c); err != nil {
		return store.DeploymentStep{}, fmt.Errorf("read command %d: %w", cmd.Seq, err)
	}
	last := dep.Events[len(dep.Events)-1]
	return d.send(ctx, q, store.Node{ID: *dep.NodeID}, dep.State, last.Message, c)
}

func (d *Deployer) networkCommand(ctx context.Context, q *store.Queries, app store.App) *agentv1.Command {
	encrypted := false
	if c, err := q.ClusterByID(ctx, app.ClusterID); err == nil {
		encrypted = c.OverlayEncryption
	}
	return &agentv1.Command{Kind: &agentv1.Command_NetworkEnsure{NetworkEnsure: &agentv1.NetworkEnsure{
		Name:      workload.NetworkName(app.OrganizationID.String()),
		Labels:    map[string]string{workload.LabelManaged: workload.ManagedValue, workload.LabelOrganization: app.OrganizationID.String()},
		Encrypted: encrypted,
	}}}
}

// applyCommand is the ServiceApply of a deployment: its release's spec (secrets opened), the
// deployment's replica count, and the plan's resources.
func (d *Deployer) applyCommand(ctx context.Context, q *store.Queries, app store.App, dep store.Deployment) (*agentv1.Command, error) {
	rel, err := q.Release(ctx, app.OrganizationID, dep.ReleaseID)
	if err != nil {
		return nil, err
	}
	plan, err := q.PlanByID(ctx, rel.PlanID)
	if err != nil {
		return nil, err
	}
	spec, err := OpenSpec(d.opts.Keyring, app.ID, rel.Spec)
	if err != nil {
		return nil, err
	}
	image := rel.Image
	if rel.ImageDigest != "" {
		if ref, err := workload.ParseImageRef(rel.Image); err == nil && ref.Digest == "" {
			image = rel.Image + "@" + rel.ImageDigest
		}
	}
	apply := &agentv1.ServiceApply{
		ServiceName:       workload.ServiceName(app.ID.String()),
		DeploymentId:      dep.ID.String(),
		Image:             image,
		Command:           spec.GetCommand(),
		Replicas:          dep.Replicas,
		CpuMillis:         int64(plan.CPUMillis),
		MemoryBytes:       int64(plan.MemoryMiB) << 20,
		Network:           workload.NetworkName(app.OrganizationID.String()),
		Labels:            workload.ServiceLabels(app.OrganizationID.String(), app.ID.String(), dep.ID.String(), rel.Version),
		ForceUpdate:       uint64(app.ForceUpdate),
		RollbackOnFailure: true,
		MonitorMs:         d.opts.Monitor.Milliseconds(),
	}
	for _, e := range spec.GetEnv() {
		apply.Env = append(apply.Env, e.GetName()+"="+e.GetValue())
	}
	if spec.GetPort() > 0 && !hasEnv(spec, "PORT") {
		apply.Env = append(apply.Env, fmt.Sprintf("PORT=%d", spec.GetPort()))
	}
	if hc := spec.GetHealthCheck(); len(hc.GetCommand()) > 0 {
		apply.HealthCheck = healthCheck(hc)
	}
	if ra := spec.GetRegistryAuth(); ra.GetUsername() != "" {
		auth, err := json.Marshal(map[string]string{"username": ra.GetUsername(), "password": ra.GetPassword(),
			"serveraddress": ra.GetServer()})
		if err != nil {
			return nil, err
		}
		apply.RegistryAuth = base64.URLEncoding.EncodeToString(auth)
	}
	return &agentv1.Command{Kind: &agentv1.Command_ServiceApply{ServiceApply: apply}}, nil
}

func hasEnv(spec *appv1.AppSpec, name string) bool {
	for _, e := range spec.GetEnv() {
		if e.GetName() == name {
			return true
		}
	}
	return false
}

// healthCheck is the agent's form of a health check, with the defaults applied.
func healthCheck(hc *appv1.HealthCheck) *agentv1.WorkloadHealthCheck {
	t := workload.ResolveHealthCheck(hc)
	return &agentv1.WorkloadHealthCheck{
		Command:       hc.GetCommand(),
		IntervalMs:    t.Interval.Milliseconds(),
		TimeoutMs:     t.Timeout.Milliseconds(),
		Retries:       int32(t.Retries),
		StartPeriodMs: t.StartPeriod.Milliseconds(),
	}
}
