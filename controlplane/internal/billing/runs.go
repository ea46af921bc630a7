package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// ResourceType is what kind of thing is billed.
type ResourceType string

// The billable resources.
const (
	ResourceApp     ResourceType = "app"
	ResourceCluster ResourceType = "cluster"
)

// Resource is one billable thing of an organization.
type Resource struct {
	Type           ResourceType
	ID             uuid.UUID
	OrganizationID uuid.UUID
	// PlanID prices the resource from the plan's price history; nil for resources priced by
	// their run's unit price alone (a dedicated cluster's contract price).
	PlanID *uuid.UUID
}

// Run is a resource's state from At on: Quantity units (0: stopped) at UnitPrice minor units
// per unit-hour in Currency.
type Run struct {
	Resource
	Quantity  int
	UnitPrice int64
	Currency  string
	At        time.Time
}

// SetRunning records that r runs at quantity (0: stopped) from at on: it ends r's open run at
// at and opens a new one when quantity > 0; the same state again changes nothing. Call it in
// the transaction that makes the change (a deployment succeeding, scaling, stopping).
// unitPrice is the plan's price now (or, for a resource without a plan, its contract price);
// see the package doc for how prices are charged. The organization's wallet is created in
// currency on first use; ErrCurrencyMismatch when it has another currency.
func SetRunning(ctx context.Context, q *store.Queries, r Resource, quantity int, unitPrice int64, currency string, at time.Time) error {
	return SetRunningMany(ctx, q, []Run{{Resource: r, Quantity: quantity, UnitPrice: unitPrice, Currency: currency, At: at}})
}

// SetRunningMany is SetRunning for several distinct resources at once (suspending an
// organization's apps, say), in a few statements.
func SetRunningMany(ctx context.Context, q *store.Queries, runs []Run) error {
	changes := make([]store.RunChange, len(runs))
	for i, r := range runs {
		if err := validateRun(r); err != nil {
			return fmt.Errorf("set running %s %s: %w", r.Type, r.ID, err)
		}
		changes[i] = store.RunChange{
			OrganizationID: r.OrganizationID, ResourceType: string(r.Type), ResourceID: r.ID, PlanID: r.PlanID,
			Quantity: int32(r.Quantity), UnitPrice: r.UnitPrice, Currency: r.Currency, At: r.At,
		}
	}
	if err := q.ApplyRunChanges(ctx, changes); err != nil {
		return fmt.Errorf("set running: %w", err)
	}
	return nil
}

func validateRun(r Run) error {
	switch {
	case r.Type != ResourceApp && r.Type != ResourceCluster:
		return fmt.Errorf("%w: resource type must be app or cluster", ErrInvalid)
	case r.ID == uuid.Nil || r.OrganizationID == uuid.Nil:
		return fmt.Errorf("%w: resource and organization ids are required", ErrInvalid)
	case r.Quantity < 0 || r.Quantity > 1_000_000:
		return fmt.Errorf("%w: quantity must be between 0 and 1000000", ErrInvalid)
	case r.UnitPrice < 0:
		return fmt.Errorf("%w: unit price must not be negative", ErrInvalid)
	case r.Quantity > 0 && !currencyCode.MatchString(r.Currency):
		return fmt.Errorf("%w: currency must be a 3-letter ISO 4217 code", ErrInvalid)
	case r.At.IsZero():
		return fmt.Errorf("%w: time is required", ErrInvalid)
	}
	return nil
}

// Override is an admin's price for one resource.
type Override struct {
	Type ResourceType
	ID   uuid.UUID
	// UnitPrice in minor units per unit-hour; nil ends the override (the plan price applies
	// again).
	UnitPrice *int64
	// EffectiveFrom is when it takes effect; it is charged from the first period that starts
	// at or after it. Zero means now.
	EffectiveFrom time.Time
	// SetBy is the admin ("user:<id>"); Reason is required.
	SetBy  string
	Reason string
}

// SetPriceOverride appends o to the resource's override history (kept for good).
func SetPriceOverride(ctx context.Context, q *store.Queries, o Override) (store.PriceOverride, error) {
	switch {
	case o.Type != ResourceApp && o.Type != ResourceCluster:
		return store.PriceOverride{}, fmt.Errorf("set price override: %w: resource type must be app or cluster", ErrInvalid)
	case o.ID == uuid.Nil:
		return store.PriceOverride{}, fmt.Errorf("set price override: %w: resource id is required", ErrInvalid)
	case o.UnitPrice != nil && *o.UnitPrice < 0:
		return store.PriceOverride{}, fmt.Errorf("set price override: %w: unit price must not be negative", ErrInvalid)
	case o.SetBy == "" || len(o.SetBy) > 200:
		return store.PriceOverride{}, fmt.Errorf("set price override: %w: set_by must be 1 to 200 characters", ErrInvalid)
	case o.Reason == "" || len(o.Reason) > 500:
		return store.PriceOverride{}, fmt.Errorf("set price override: %w: reason must be 1 to 500 characters", ErrInvalid)
	}
	if o.EffectiveFrom.IsZero() {
		o.EffectiveFrom = time.Now()
	}
	p, err := q.InsertPriceOverride(ctx, store.PriceOverride{ResourceType: string(o.Type), ResourceID: o.ID,
		UnitPrice: o.UnitPrice, EffectiveFrom: o.EffectiveFrom, SetBy: o.SetBy, Reason: o.Reason})
	if err != nil {
		return store.PriceOverride{}, fmt.Errorf("set price override: %w", err)
	}
	return p, nil
}
