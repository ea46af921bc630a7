package deploy

import (
	"context"
	"errors"
	"time"

	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/store"
)

// billRunning records, in the transaction that ends a deployment, how many replicas of the
// app run from now on, for metering. A wallet in another currency than the plan's is logged
// and not billed rather than blocking the deployment: the API refuses such apps up front.
func (d *Deployer) billRunning(ctx context.Context, q *store.Queries, app store.App, replicas int32) error {
	plan, err := q.PlanByID(ctx, app.PlanID)
	if err != nil {
		return err
	}
	planID := plan.ID
	err = billing.SetRunning(ctx, q, billing.Resource{Type: billing.ResourceApp, ID: app.ID,
		OrganizationID: app.OrganizationID, PlanID: &planID}, int(replicas), plan.PricePerHour, plan.Currency, time.Now())
	if errors.Is(err, billing.ErrCurrencyMismatch) {
		d.logger.Error("app not billed: its plan's currency is not its organization's", "app_id", app.ID, "plan", plan.Name)
		return nil
	}
	return err
}
