// Package api implements the control plane's Connect services, one file per proto service.
// Handlers trust the auth interceptor for who may call them; they scope every query by the
// organization the interceptor checked, write an activity row in the same transaction as each
// change, and map store errors to Connect codes (never leaking SQL text).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/activity"
	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/billing/payment"
	"skypanel/controlplane/internal/ca"
	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/request"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/store"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	"skypanel/shared/gen/go/skypanel/admin/v1/adminv1connect"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/gen/go/skypanel/apitoken/v1/apitokenv1connect"
	"skypanel/shared/gen/go/skypanel/app/v1/appv1connect"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/gen/go/skypanel/domain/v1/domainv1connect"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
)

// Options are the dependencies of every service.
type Options struct {
	Store  *store.Store
	Mail   *mail.Enqueuer
	Hub    *activity.Hub
	Logger *slog.Logger
	// Limiter throttles failed log-ins.
	Limiter *auth.LoginLimiter
	// PublicURL prefixes links in emails (no trailing slash).
	PublicURL      string
	AccessTokenTTL time.Duration
	SessionTTL     time.Duration
	InvitationTTL  time.Duration
	// PasswordParams are argon2id's costs (tests lower them).
	PasswordParams auth.PasswordParams
	// Keyring seals secrets at rest (join tokens, gossip keys).
	Keyring *secrets.Keyring
	// Authority is the platform CA.
	Authority *ca.Authority
	// Nodes runs agent sessions and the node lifecycle.
	Nodes *nodes.Manager
	// AgentURL is what agents dial (it goes into setup commands).
	AgentURL string
	// NodeCertTTL is the lifetime of node certificates.
	NodeCertTTL time.Duration
	// Deploy places apps and carries their deployments.
	Deploy *deploy.Deployer
	// Rules keep balance states (warning, grace, suspension); Meter charges usage.
	Rules *billing.Rules
	Meter *billing.Meter
	// Payments takes wallet top-ups; nil when the platform takes none.
	Payments payment.Provider
	// BillingCurrency is the currency of a new organization's wallet (ISO 4217).
	BillingCurrency string
}

// RegisterPublic mounts the services of the public listener on mux behind the auth interceptor.
func RegisterPublic(mux *http.ServeMux, opts Options, handlerOpts ...connect.HandlerOption) error {
	interceptor, err := auth.NewInterceptor(opts.Store)
	if err != nil {
		return err
	}
	handlerOpts = append(handlerOpts, connect.WithInterceptors(interceptor))
	mux.Handle(authv1connect.NewAuthServiceHandler(&AuthService{opts: opts}, handlerOpts...))
	mux.Handle(organizationv1connect.NewOrganizationServiceHandler(&OrganizationService{opts: opts}, handlerOpts...))
	mux.Handle(organizationv1connect.NewInvitationServiceHandler(&InvitationService{opts: opts}, handlerOpts...))
	mux.Handle(apitokenv1connect.NewAPITokenServiceHandler(&APITokenService{opts: opts}, handlerOpts...))
	mux.Handle(activityv1connect.NewActivityServiceHandler(&ActivityService{opts: opts}, handlerOpts...))
	mux.Handle(adminv1connect.NewAdminServiceHandler(&AdminService{opts: opts}, handlerOpts...))
	mux.Handle(clusterv1connect.NewClusterServiceHandler(&ClusterService{opts: opts}, handlerOpts...))
	mux.Handle(planv1connect.NewPlanServiceHandler(&PlanService{opts: opts}, handlerOpts...))
	mux.Handle(appv1connect.NewAppServiceHandler(&AppService{opts: opts}, handlerOpts...))
	mux.Handle(domainv1connect.NewDomainServiceHandler(&DomainService{opts: opts}, handlerOpts...))
	mux.Handle(billingv1connect.NewBillingServiceHandler(&BillingService{opts: opts}, handlerOpts...))
	return nil
}

// RegisterAgent mounts AgentService on the agent listener's mux behind the auth interceptor
// (whose node rules read the identity the listener's middleware took from the client
// certificate).
func RegisterAgent(mux *http.ServeMux, opts Options, handlerOpts ...connect.HandlerOption) error {
	interceptor, err := auth.NewInterceptor(opts.Store)
	if err != nil {
		return err
	}
	handlerOpts = append(handlerOpts, connect.WithInterceptors(interceptor))
	mux.Handle(agentv1connect.NewAgentServiceHandler(&AgentService{opts: opts}, handlerOpts...))
	return nil
}

// event starts an activity row for a change made by the caller in ctx, from the caller's
// address. orgID may be uuid.Nil for platform-wide events.
func event(ctx context.Context, orgID uuid.UUID, eventType, entityType, entityID string, meta map[string]string) store.ActivityEvent {
	info := request.From(ctx)
	e := store.ActivityEvent{
		ActorKind: store.ActorSystem, EventType: eventType, EntityType: entityType, EntityID: entityID,
		IP: info.IP, UserAgent: info.UserAgent, Metadata: meta,
	}
	if orgID != uuid.Nil {
		e.OrganizationID = &orgID
	}
	if p := auth.PrincipalFrom(ctx); p != nil {
		uid := p.UserID
		e.ActorKind, e.ActorUserID, e.ActorEmail = store.ActorUser, &uid, p.Email
		if p.IsAPIToken() {
			tid := p.TokenID
			e.ActorKind, e.ActorTokenID = store.ActorAPIToken, &tid
		}
	}
	return e
}

// storeErr maps a store error to a Connect error. what names the thing looked up.
func storeErr(what string, err error) error {
	var cerr *connect.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cerr):
		return err
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s not found", what))
	case errors.Is(err, store.ErrConflict):
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("%s already exists", what))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	// The server's error interceptor logs the cause and shows the caller only a request id.
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s: %w", what, err))
}

// failedPrecondition is a refusal because of the state things are in, with the reason.
func failedPrecondition(format string, args ...any) error {
	return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(format, args...))
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsPtr(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// mustPrincipal returns the caller of a non-public RPC (the interceptor guarantees one).
func mustPrincipal(ctx context.Context) *auth.Principal {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		panic("api: non-public RPC without a principal")
	}
	return p
}
