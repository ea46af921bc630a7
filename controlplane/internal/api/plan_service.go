package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	planv1 "skypanel/shared/gen/go/skypanel/plan/v1"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
)

// PlanService implements planv1connect.PlanServiceHandler.
type PlanService struct {
	planv1connect.UnimplementedPlanServiceHandler
	opts Options
}

// ListPlans lists the plans; retired ones only for platform admins who ask.
func (s *PlanService) ListPlans(ctx context.Context, req *connect.Request[planv1.ListPlansRequest]) (*connect.Response[planv1.ListPlansResponse], error) {
	p := mustPrincipal(ctx)
	ps, err := s.opts.Store.Plans(ctx, req.Msg.GetIncludeRetired() && p.PlatformAdmin)
	if err != nil {
		return nil, storeErr("plans", err)
	}
	out := &planv1.ListPlansResponse{}
	for _, pl := range ps {
		out.Plans = append(out.Plans, planProto(pl))
	}
	return connect.NewResponse(out), nil
}

// CreatePlan adds a plan.
func (s *PlanService) CreatePlan(ctx context.Context, req *connect.Request[planv1.CreatePlanRequest]) (*connect.Response[planv1.CreatePlanResponse], error) {
	in, err := planFields(req.Msg.GetPlan())
	if err != nil {
		return nil, err
	}
	var created store.Plan
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		created, err = q.CreatePlan(ctx, in)
		if errors.Is(err, store.ErrConflict) {
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("plan.name: a plan named %q exists", in.Name))
		}
		if err != nil {
			return storeErr("plan", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "plan.created", "plan", created.ID.String(), planMeta(created)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&planv1.CreatePlanResponse{Plan: planProto(created)}), nil
}

// UpdatePlan changes a plan. Apps on it get the new size at their next deployment; the price
// applies from the next billing period.
func (s *PlanService) UpdatePlan(ctx context.Context, req *connect.Request[planv1.UpdatePlanRequest]) (*connect.Response[planv1.UpdatePlanResponse], error) {
	in, err := planFields(req.Msg.GetPlan())
	if err != nil {
		return nil, err
	}
	in.ID = uuid.MustParse(req.Msg.GetPlanId())
	var updated store.Plan
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		updated, err = q.UpdatePlan(ctx, in)
		if errors.Is(err, store.ErrConflict) {
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("plan.name: a plan named %q exists", in.Name))
		}
		if err != nil {
			return storeErr("plan", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "plan.updated", "plan", updated.ID.String(), planMeta(updated)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&planv1.UpdatePlanResponse{Plan: planProto(updated)}), nil
}

// RetirePlan stops new apps from choosing a plan.
func (s *PlanService) RetirePlan(ctx context.Context, req *connect.Request[planv1.RetirePlanRequest]) (*connect.Response[planv1.RetirePlanResponse], error) {
	var retired store.Plan
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		retired, err = q.RetirePlan(ctx, uuid.MustParse(req.Msg.GetPlanId()))
		if err != nil {
			return storeErr("plan", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "plan.retired", "plan", retired.ID.String(), map[string]string{"name": retired.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&planv1.RetirePlanResponse{Plan: planProto(retired)}), nil
}

func planFields(f *planv1.PlanFields) (store.Plan, error) {
	name := strings.TrimSpace(f.GetName())
	if name == "" {
		return store.Plan{}, auth.FieldError("plan.name", "must not be blank")
	}
	return store.Plan{Name: name, Description: strings.TrimSpace(f.GetDescription()), CPUMillis: f.GetCpuMillis(),
		MemoryMiB: f.GetMemoryMib(), PricePerHour: f.GetPricePerHour(), Currency: f.GetCurrency(),
		MaxReplicas: f.GetMaxReplicas(), MaxApps: f.GetMaxApps()}, nil
}

func planMeta(p store.Plan) map[string]string {
	return map[string]string{"name": p.Name, "cpu_millis": fmt.Sprint(p.CPUMillis), "memory_mib": fmt.Sprint(p.MemoryMiB),
		"price_per_hour": fmt.Sprint(p.PricePerHour), "currency": p.Currency}
}

func planProto(p store.Plan) *planv1.Plan {
	return &planv1.Plan{Id: p.ID.String(), Name: p.Name, Description: p.Description, CpuMillis: p.CPUMillis,
		MemoryMib: p.MemoryMiB, PricePerHour: p.PricePerHour, Currency: p.Currency, MaxReplicas: p.MaxReplicas,
		MaxApps: p.MaxApps, Retired: p.RetiredAt != nil, CreatedAt: timestamppb.New(p.CreatedAt)}
}
