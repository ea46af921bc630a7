package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// ErrSuspended refuses a change to an app while its organization is suspended.
var ErrSuspended = errors.New("the organization is suspended")

// SuspendApps marks every app of the organization suspended and scales it to 0, in the
// caller's transaction. Each app keeps its replicas (and the capacity they reserve), so
// ResumeApps brings it back as it was; the edges answer for it with a suspended page. It
// returns how many apps it suspended.
func (d *Deployer) SuspendApps(ctx context.Context, q *store.Queries, orgID uuid.UUID, message string) (int, error) {
	return d.setSuspended(ctx, q, orgID, true, message)
}

// ResumeApps ends the suspension of every app of the organization, in the caller's
// transaction: each runs again with the replicas it had.
func (d *Deployer) ResumeApps(ctx context.Context, q *store.Queries, orgID uuid.UUID, message string) (int, error) {
	return d.setSuspended(ctx, q, orgID, false, message)
}

func (d *Deployer) setSuspended(ctx context.Context, q *store.Queries, orgID uuid.UUID, suspended bool, message string) (int, error) {
	apps, err := q.Apps(ctx, orgID)
	if err != nil {
		return 0, fmt.Errorf("list apps: %w", err)
	}
	n := 0
	for _, a := range apps {
		app, err := q.LockApp(ctx, orgID, a.ID)
		if err != nil {
			return n, fmt.Errorf("lock app %s: %w", a.Name, err)
		}
		if app.Deleting || app.Suspended == suspended {
			continue
		}
		app.Suspended = suspended
		if err := q.UpdateApp(ctx, app); err != nil {
			return n, fmt.Errorf("update app %s: %w", app.Name, err)
		}
		n++
		if app.Replicas == 0 {
			// Nothing runs or will: the flag alone changes what the edges answer.
			continue
		}
		rel, err := DesiredRelease(ctx, q, app)
		if errors.Is(err, store.ErrNotFound) {
			continue // never released: nothing to scale
		}
		if err != nil {
			return n, fmt.Errorf("app %s: %w", app.Name, err)
		}
		req := Request{App: app, Release: rel, Kind: "resume", Replicas: app.Replicas, Message: message}
		if suspended {
			req.Kind, req.Replicas = "suspend", 0
		}
		if _, err := d.Start(ctx, q, req); err != nil {
			return n, fmt.Errorf("%s app %s: %w", req.Kind, app.Name, err)
		}
	}
	return n, nil
}

// DesiredRelease is the release the app should run: the one an open deployment is bringing
// in, else the current one, else the newest. store.ErrNotFound when it has none.
func DesiredRelease(ctx context.Context, q *store.Queries, app store.App) (store.Release, error) {
	open, err := q.OpenDeployments(ctx, app.ID)
	if err != nil {
		return store.Release{}, err
	}
	var id uuid.UUID
	switch {
	case len(open) > 0:
		id = open[len(open)-1].ReleaseID
	case app.CurrentReleaseID != nil:
		id = *app.CurrentReleaseID
	default:
		rs, err := q.Releases(ctx, app.OrganizationID, app.ID)
		if err != nil {
			return store.Release{}, err
		}
		if len(rs) == 0 {
			return store.Release{}, store.ErrNotFound
		}
		return rs[0], nil
	}
	return q.Release(ctx, app.OrganizationID, id)
}
