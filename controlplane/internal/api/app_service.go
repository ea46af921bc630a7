package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/store"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	"skypanel/shared/gen/go/skypanel/app/v1/appv1connect"
	"skypanel/shared/workload"
)

// AppService implements appv1connect.AppServiceHandler: apps and their deployments here;
// logs, metrics and replicas in app_observe.go.
type AppService struct {
	appv1connect.UnimplementedAppServiceHandler
	opts Options
}

// CreateApp validates the spec, places the app on a cluster and deploys its first release.
func (s *AppService) CreateApp(ctx context.Context, req *connect.Request[appv1.CreateAppRequest]) (*connect.Response[appv1.CreateAppResponse], error) {
	orgID := uuid.MustParse(req.Msg.GetOrganizationId())
	name := req.Msg.GetName()
	if err := workload.ValidateAppName(name); err != nil {
		return nil, invalid(workload.FieldErrors{{Field: "name", Reason: err.Error()}})
	}
	plan, err := s.usablePlan(ctx, uuid.MustParse(req.Msg.GetPlanId()), uuid.Nil)
	if err != nil {
		return nil, err
	}
	spec := req.Msg.GetSpec()
	if errs := workload.ValidateSpec(spec, workload.Limits{MaxReplicas: plan.MaxReplicas}); len(errs) > 0 {
		return nil, invalid(errs)
	}
	var app store.App
	var dep store.Deployment
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		// The account's lock orders this against a suspension, which would miss a new app.
		acct, err := q.LockBillingAccount(ctx, orgID)
		if err != nil {
			return storeErr("billing account", err)
		}
		if acct.SuspendedAt != nil {
			return suspendedErr()
		}
		if err := checkAppLimit(ctx, q, orgID, plan); err != nil {
			return err
		}
		clusterID, err := deploy.Place(ctx, q, orgID, deploy.NeedOf(plan, spec.GetReplicas()))
		if err != nil {
			return placementErr(err)
		}
		id := uuid.New()
		sealed, err := deploy.SealSpec(s.opts.Keyring, id, spec, nil)
		if err != nil {
			return specErr(err)
		}
		app, err = q.InsertApp(ctx, store.App{ID: id, OrganizationID: orgID, Name: name, PlanID: plan.ID,
			ClusterID: clusterID, Spec: sealed, Replicas: spec.GetReplicas()})
		if errors.Is(err, store.ErrConflict) {
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("name: this organization has an app named %q", name))
		}
		if err != nil {
			return storeErr("app", err)
		}
		dep, err = s.release(ctx, q, app, "create", deploy.Request{Kind: "deploy", Replicas: app.Replicas, Message: "first release"})
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.created", "app", app.ID.String(),
			map[string]string{"name": name, "image": spec.GetImage(), "plan": plan.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := s.appProto(ctx, app)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.CreateAppResponse{App: out, Deployment: deploymentProto(dep)}), nil
}

// ListApps lists the organization's apps with their status.
func (s *AppService) ListApps(ctx context.Context, req *connect.Request[appv1.ListAppsRequest]) (*connect.Response[appv1.ListAppsResponse], error) {
	apps, err := s.opts.Store.Apps(ctx, uuid.MustParse(req.Msg.GetOrganizationId()))
	if err != nil {
		return nil, storeErr("apps", err)
	}
	out, err := s.appProtos(ctx, apps)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.ListAppsResponse{Apps: out}), nil
}

// GetApp returns one app.
func (s *AppService) GetApp(ctx context.Context, req *connect.Request[appv1.GetAppRequest]) (*connect.Response[appv1.GetAppResponse], error) {
	app, err := s.opts.Store.App(ctx, uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId()))
	if err != nil {
		return nil, storeErr("app", err)
	}
	out, err := s.appProto(ctx, app)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.GetAppResponse{App: out}), nil
}

// UpdateApp stores a new spec (and plan) and deploys it as a new release.
func (s *AppService) UpdateApp(ctx context.Context, req *connect.Request[appv1.UpdateAppRequest]) (*connect.Response[appv1.UpdateAppResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	spec := req.Msg.GetSpec()
	var app store.App
	var dep store.Deployment
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		app, err = s.lockApp(ctx, q, orgID, appID, "update")
		if err != nil {
			return err
		}
		planID := app.PlanID
		if id := req.Msg.GetPlanId(); id != "" {
			planID = uuid.MustParse(id)
		}
		plan, err := s.usablePlan(ctx, planID, app.PlanID)
		if err != nil {
			return err
		}
		if errs := workload.ValidateSpec(spec, workload.Limits{MaxReplicas: plan.MaxReplicas}); len(errs) > 0 {
			return invalid(errs)
		}
		if plan.ID != app.PlanID {
			if err := checkAppLimit(ctx, q, orgID, plan); err != nil {
				return err
			}
		}
		if err := s.reserve(ctx, q, app, plan, spec.GetReplicas()); err != nil {
			return err
		}
		sealed, err := deploy.SealSpec(s.opts.Keyring, app.ID, spec, app.Spec)
		if err != nil {
			return specErr(err)
		}
		app.Spec, app.PlanID, app.Replicas = sealed, plan.ID, spec.GetReplicas()
		if app.Replicas > 0 {
			app.ReplicasBeforeStop = app.Replicas
		}
		dep, err = s.release(ctx, q, app, "update", deploy.Request{Kind: "deploy", Replicas: app.Replicas, Message: "new configuration"})
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.updated", "app", app.ID.String(),
			map[string]string{"name": app.Name, "image": spec.GetImage(), "plan": plan.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := s.appProto(ctx, app)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.UpdateAppResponse{App: out, Deployment: deploymentProto(dep)}), nil
}

// DeleteApp removes the app's service; the app, its domains and certificates go once the
// service is gone, and the edges drop its routes.
func (s *AppService) DeleteApp(ctx context.Context, req *connect.Request[appv1.DeleteAppRequest]) (*connect.Response[appv1.DeleteAppResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		app, err := s.lockApp(ctx, q, orgID, appID, "delete")
		if err != nil {
			return err
		}
		rel, err := deploy.DesiredRelease(ctx, q, app)
		if err != nil {
			return storeErr("release", err)
		}
		app.Deleting = true
		if err := q.UpdateApp(ctx, app); err != nil {
			return storeErr("app", err)
		}
		if _, err := s.opts.Deploy.Start(ctx, q, deploy.Request{App: app, Release: rel, Kind: "delete",
			Message: "deleting the app", By: actor(ctx)}); err != nil {
			return storeErr("deployment", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.deleted", "app", app.ID.String(), map[string]string{"name": app.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.DeleteAppResponse{}), nil
}

// ScaleApp changes the number of replicas of the app's release.
func (s *AppService) ScaleApp(ctx context.Context, req *connect.Request[appv1.ScaleAppRequest]) (*connect.Response[appv1.ScaleAppResponse], error) {
	n := req.Msg.GetReplicas()
	app, dep, err := s.change(ctx, req.Msg.GetOrganizationId(), req.Msg.GetAppId(), "scale", "app.scaled",
		func(q *store.Queries, app *store.App, plan store.Plan) (int32, string, error) {
			if n > plan.MaxReplicas {
				return 0, "", invalid(workload.FieldErrors{{Field: "replicas", Reason: fmt.Sprintf("at most %d replicas on the %s plan", plan.MaxReplicas, plan.Name)}})
			}
			return n, fmt.Sprintf("scale to %d", n), nil
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.ScaleAppResponse{App: app, Deployment: dep}), nil
}

// RestartApp replaces every replica.
func (s *AppService) RestartApp(ctx context.Context, req *connect.Request[appv1.RestartAppRequest]) (*connect.Response[appv1.RestartAppResponse], error) {
	_, dep, err := s.change(ctx, req.Msg.GetOrganizationId(), req.Msg.GetAppId(), "restart", "app.restarted",
		func(q *store.Queries, app *store.App, plan store.Plan) (int32, string, error) {
			app.ForceUpdate++
			return app.Replicas, "restart every replica", nil
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.RestartAppResponse{Deployment: dep}), nil
}

// StopApp scales the app to zero, remembering how many replicas it had.
func (s *AppService) StopApp(ctx context.Context, req *connect.Request[appv1.StopAppRequest]) (*connect.Response[appv1.StopAppResponse], error) {
	app, dep, err := s.change(ctx, req.Msg.GetOrganizationId(), req.Msg.GetAppId(), "stop", "app.stopped",
		func(q *store.Queries, app *store.App, plan store.Plan) (int32, string, error) {
			if app.Replicas > 0 {
				app.ReplicasBeforeStop = app.Replicas
			}
			return 0, "stop", nil
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.StopAppResponse{App: app, Deployment: dep}), nil
}

// StartApp scales a stopped app back to the replicas it had.
func (s *AppService) StartApp(ctx context.Context, req *connect.Request[appv1.StartAppRequest]) (*connect.Response[appv1.StartAppResponse], error) {
	app, dep, err := s.change(ctx, req.Msg.GetOrganizationId(), req.Msg.GetAppId(), "start", "app.started",
		func(q *store.Queries, app *store.App, plan store.Plan) (int32, string, error) {
			n := min(max(app.ReplicasBeforeStop, 1), plan.MaxReplicas)
			return n, fmt.Sprintf("start %d replicas", n), nil
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.StartAppResponse{App: app, Deployment: dep}), nil
}

// Redeploy makes a new release of the current spec and deploys it.
func (s *AppService) Redeploy(ctx context.Context, req *connect.Request[appv1.RedeployRequest]) (*connect.Response[appv1.RedeployResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	var dep store.Deployment
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		app, err := s.lockApp(ctx, q, orgID, appID, "deploy")
		if err != nil {
			return err
		}
		dep, err = s.release(ctx, q, app, "redeploy", deploy.Request{Kind: "deploy", Replicas: app.Replicas, Message: "redeploy"})
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.redeployed", "app", app.ID.String(), map[string]string{"name": app.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.RedeployResponse{Deployment: deploymentProto(dep)}), nil
}

// Rollback deploys an earlier release as it was.
func (s *AppService) Rollback(ctx context.Context, req *connect.Request[appv1.RollbackRequest]) (*connect.Response[appv1.RollbackResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	var dep store.Deployment
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		app, err := s.lockApp(ctx, q, orgID, appID, "rollback")
		if err != nil {
			return err
		}
		rel, err := q.Release(ctx, orgID, uuid.MustParse(req.Msg.GetReleaseId()))
		if err != nil || rel.AppID != app.ID {
			return connect.NewError(connect.CodeNotFound, errors.New("release_id: this app has no such release"))
		}
		plan, err := q.PlanByID(ctx, rel.PlanID)
		if err != nil {
			return storeErr("plan", err)
		}
		replicas := min(app.Replicas, plan.MaxReplicas)
		if err := s.reserve(ctx, q, app, plan, replicas); err != nil {
			return err
		}
		app.Spec, app.PlanID, app.Replicas = rel.Spec, rel.PlanID, replicas
		if err := q.UpdateApp(ctx, app); err != nil {
			return storeErr("app", err)
		}
		dep, err = s.opts.Deploy.Start(ctx, q, deploy.Request{App: app, Release: rel, Kind: "rollback", Replicas: replicas,
			Message: fmt.Sprintf("roll back to release %d", rel.Version), By: actor(ctx)})
		if err != nil {
			return storeErr("deployment", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "app.rolled_back", "app", app.ID.String(),
			map[string]string{"name": app.Name, "release": fmt.Sprint(rel.Version)}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&appv1.RollbackResponse{Deployment: deploymentProto(dep)}), nil
}

// ListReleases lists the app's releases, newest first.
func (s *AppService) ListReleases(ctx context.Context, req *connect.Request[appv1.ListReleasesRequest]) (*connect.Response[appv1.ListReleasesResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	if _, err := s.opts.Store.App(ctx, orgID, appID); err != nil {
		return nil, storeErr("app", err)
	}
	rs, err := s.opts.Store.Releases(ctx, orgID, appID)
	if err != nil {
		return nil, storeErr("releases", err)
	}
	out := &appv1.ListReleasesResponse{}
	for _, r := range rs {
		spec, err := deploy.MaskedSpec(r.Spec)
		if err != nil {
			return nil, storeErr("release", err)
		}
		out.Releases = append(out.Releases, &appv1.Release{Id: r.ID.String(), AppId: r.AppID.String(), Version: r.Version,
			Image: r.Image, ImageDigest: r.ImageDigest, Spec: spec, PlanId: r.PlanID.String(),
			CreatedAt: timestamppb.New(r.CreatedAt), CreatedByEmail: r.CreatedByEmail, Description: r.Description})
	}
	return connect.NewResponse(out), nil
}

// changeFunc adjusts the locked app for a change and returns the replicas to deploy with and
// the deployment's message.
type changeFunc func(q *store.Queries, app *store.App, plan store.Plan) (int32, string, error)

// change runs a change of replicas (scale, stop, start, restart) on the app's release.
func (s *AppService) change(ctx context.Context, org, appIDText, kind, eventType string, fn changeFunc) (*appv1.App, *appv1.Deployment, error) {
	orgID, appID := uuid.MustParse(org), uuid.MustParse(appIDText)
	var app store.App
	var dep store.Deployment
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		app, err = s.lockApp(ctx, q, orgID, appID, kind)
		if err != nil {
			return err
		}
		plan, err := q.PlanByID(ctx, app.PlanID)
		if err != nil {
			return storeErr("plan", err)
		}
		replicas, msg, err := fn(q, &app, plan)
		if err != nil {
			return err
		}
		if err := s.reserve(ctx, q, app, plan, replicas); err != nil {
			return err
		}
		rel, err := deploy.DesiredRelease(ctx, q, app)
		if err != nil {
			return storeErr("release", err)
		}
		app.Replicas = replicas
		if app.Spec, err = withReplicas(app.Spec, replicas); err != nil {
			return storeErr("app", err)
		}
		if err := q.UpdateApp(ctx, app); err != nil {
			return storeErr("app", err)
		}
		dep, err = s.opts.Deploy.Start(ctx, q, deploy.Request{App: app, Release: rel, Kind: kind, Replicas: replicas,
			Message: msg, By: actor(ctx)})
		if err != nil {
			return storeErr("deployment", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, eventType, "app", app.ID.String(),
			map[string]string{"name": app.Name, "replicas": fmt.Sprint(replicas)}))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := s.appProto(ctx, app)
	if err != nil {
		return nil, nil, err
	}
	return out, deploymentProto(dep), nil
}

// release snapshots the app's stored spec as a new release and deploys it (the caller holds
// the app's lock and fills r's kind, replicas and message).
func (s *AppService) release(ctx context.Context, q *store.Queries, app store.App, why string, r deploy.Request) (store.Deployment, error) {
	spec, err := deploy.MaskedSpec(app.Spec)
	if err != nil {
		return store.Deployment{}, storeErr("app", err)
	}
	digest := ""
	if ref, err := workload.ParseImageRef(spec.GetImage()); err == nil {
		digest = ref.Digest
	}
	rel, err := q.InsertRelease(ctx, store.Release{AppID: app.ID, OrganizationID: app.OrganizationID, Image: spec.GetImage(),
		ImageDigest: digest, Spec: app.Spec, PlanID: app.PlanID, Description: why, CreatedBy: actor(ctx)})
	if err != nil {
		return store.Deployment{}, storeErr("release", err)
	}
	if err := q.UpdateApp(ctx, app); err != nil {
		return store.Deployment{}, storeErr("app", err)
	}
	r.App, r.Release, r.By = app, rel, actor(ctx)
	dep, err := s.opts.Deploy.Start(ctx, q, r)
	if err != nil {
		return store.Deployment{}, storeErr("deployment", err)
	}
	return dep, nil
}

// lockApp locks an app of the organization for a change; a deleting app takes none, and a
// suspended one none but deletion.
func (s *AppService) lockApp(ctx context.Context, q *store.Queries, orgID, appID uuid.UUID, kind string) (store.App, error) {
	app, err := q.LockApp(ctx, orgID, appID)
	if err != nil {
		return store.App{}, storeErr("app", err)
	}
	if app.Deleting {
		return store.App{}, failedPrecondition("app %s is being deleted", app.Name)
	}
	if app.Suspended && kind != "delete" {
		return store.App{}, suspendedErr()
	}
	return app, nil
}

// suspendedErr refuses what would run apps of a suspended organization.
func suspendedErr() error {
	return failedPrecondition("%v: its apps stay stopped until the balance is positive again (top up the wallet) or a platform admin resumes it",
		deploy.ErrSuspended)
}

// usablePlan returns a plan new apps may choose: not retired, unless it is the app's current
// one (current may be uuid.Nil).
func (s *AppService) usablePlan(ctx context.Context, id, current uuid.UUID) (store.Plan, error) {
	plan, err := s.opts.Store.PlanByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Plan{}, connect.NewError(connect.CodeNotFound, errors.New("plan_id: no such plan"))
	}
	if err != nil {
		return store.Plan{}, storeErr("plan", err)
	}
	if plan.RetiredAt != nil && plan.ID != current {
		return store.Plan{}, failedPrecondition("the %s plan is retired: choose another", plan.Name)
	}
	return plan, nil
}

// checkAppLimit refuses one more app of the organization on the plan past its maximum, and
// a plan priced in another currency than the organization's wallet.
func checkAppLimit(ctx context.Context, q *store.Queries, orgID uuid.UUID, plan store.Plan) error {
	w, err := q.Wallet(ctx, orgID)
	switch {
	case err == nil && w.Currency != plan.Currency:
		return failedPrecondition("the %s plan is priced in %s, and this organization pays in %s: choose a plan in %s",
			plan.Name, plan.Currency, w.Currency, w.Currency)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return storeErr("wallet", err)
	}
	n, err := q.CountApps(ctx, orgID, plan.ID)
	if err != nil {
		return storeErr("apps", err)
	}
	if n >= plan.MaxApps {
		return failedPrecondition("the %s plan allows %d apps per organization, and this organization has %d", plan.Name, plan.MaxApps, n)
	}
	return nil
}

// reserve checks the app's cluster has room for the app at a new size.
func (s *AppService) reserve(ctx context.Context, q *store.Queries, app store.App, plan store.Plan, replicas int32) error {
	old, err := q.PlanByID(ctx, app.PlanID)
	if err != nil {
		return storeErr("plan", err)
	}
	now, next := deploy.NeedOf(old, app.Replicas), deploy.NeedOf(plan, replicas)
	more := deploy.Need{CPUMillis: next.CPUMillis - now.CPUMillis, MemoryMiB: next.MemoryMiB - now.MemoryMiB}
	return placementErr(deploy.Reserve(ctx, q, app.ClusterID, more))
}

// withReplicas returns a stored spec with its replicas changed.
func withReplicas(stored []byte, n int32) ([]byte, error) {
	spec := &appv1.AppSpec{}
	if err := proto.Unmarshal(stored, spec); err != nil {
		return nil, err
	}
	spec.Replicas = n
	return proto.Marshal(spec)
}

// actor is the user making the change, for releases and deployments.
func actor(ctx context.Context) *uuid.UUID {
	id := mustPrincipal(ctx).UserID
	return &id
}

// invalid is InvalidArgument listing every field error.
func invalid(errs workload.FieldErrors) error {
	msgs := make([]string, 0, len(errs))
	details := &errdetails.BadRequest{}
	for _, e := range errs {
		msgs = append(msgs, e.Field+": "+e.Reason)
		details.FieldViolations = append(details.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: e.Field, Description: e.Reason})
	}
	cerr := connect.NewError(connect.CodeInvalidArgument, errors.New(strings.Join(msgs, "; ")))
	if d, err := connect.NewErrorDetail(details); err == nil {
		cerr.AddDetail(d)
	}
	return cerr
}

// specErr maps an error from sealing a spec.
func specErr(err error) error {
	var fe workload.FieldError
	if errors.As(err, &fe) {
		return invalid(workload.FieldErrors{fe})
	}
	return storeErr("spec", err)
}

// placementErr maps the scheduler's refusal to FailedPrecondition with its reason.
func placementErr(err error) error {
	if errors.Is(err, deploy.ErrNoRoom) {
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(strings.TrimPrefix(err.Error(), deploy.ErrNoRoom.Error()+": ")))
	}
	return storeErr("placement", err)
}
