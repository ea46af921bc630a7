package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"skypanel/controlplane/internal/store"
)

// Lookup is what the interceptor asks the store.
type Lookup interface {
	SessionByAccessToken(ctx context.Context, tokenHash []byte) (store.SessionPrincipal, error)
	APITokenPrincipal(ctx context.Context, tokenHash []byte) (store.TokenPrincipal, error)
	SessionMemberByAccessToken(ctx context.Context, tokenHash []byte, orgID uuid.UUID) (store.SessionMember, error)
	MembershipRole(ctx context.Context, orgID, userID uuid.UUID) (store.Role, error)
}

// Interceptor authenticates the caller, enforces the authorization table and validates the
// request, in that order, before any handler runs. Errors say which of the three failed:
// Unauthenticated, PermissionDenied, or InvalidArgument naming the field.
type Interceptor struct {
	lookup    Lookup
	validator protovalidate.Validator
}

// NewInterceptor returns an interceptor that resolves callers with lookup.
func NewInterceptor(lookup Lookup) (*Interceptor, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("new auth interceptor: %w", err)
	}
	return &Interceptor{lookup: lookup, validator: v}, nil
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, p, rule, err := i.authenticate(ctx, req.Spec().Procedure, req.Header().Get("Authorization"), req.Any())
		if err != nil {
			return nil, err
		}
		if err := i.authorize(ctx, p, rule, req.Any()); err != nil {
			return nil, err
		}
		if err := i.validate(req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor. The caller is authenticated from the
// headers before the stream starts; authorization and validation run on the request message
// as the handler receives it.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, checked, err := i.checkStream(ctx, conn)
		if err != nil {
			return err
		}
		return next(ctx, checked)
	}
}

// checkStream authenticates a stream's caller and wraps conn to authorize and validate the
// request message as the handler receives it (it comes later, so the caller's membership is
// looked up then). It is a function of its own so that its locals are not on the stack of
// a stream's goroutine for the stream's life: see nodes.Manager.open.
//
//go:noinline
func (i *Interceptor) checkStream(ctx context.Context, conn connect.StreamingHandlerConn) (context.Context, connect.StreamingHandlerConn, error) {
	ctx, p, rule, err := i.authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader().Get("Authorization"), nil)
	if err != nil {
		return nil, nil, err
	}
	return ctx, &checkedConn{StreamingHandlerConn: conn, check: func(msg any) error {
		if err := i.authorize(ctx, p, rule, msg); err != nil {
			return err
		}
		return i.validate(msg)
	}}, nil
}

type checkedConn struct {
	connect.StreamingHandlerConn
	check func(msg any) error
}

func (c *checkedConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return c.check(msg)
}

// authenticate resolves the caller of procedure from the Authorization header. msg is the
// request when it is already read (unary RPCs; nil for streams): for an organization-scoped
// RPC called with an access token, the caller's role in the organization it names is then
// read in the same query as the token, and authorize needs no second one.
func (i *Interceptor) authenticate(ctx context.Context, procedure, header string, msg any) (context.Context, *Principal, Rule, error) {
	rule, ok := RuleFor(procedure)
	if !ok {
		// Deny by default: an RPC nobody classified is served to nobody.
		return ctx, nil, rule, connect.NewError(connect.CodeInternal, fmt.Errorf("%s has no authorization rule", procedure))
	}
	secret, hasBearer := strings.CutPrefix(header, "Bearer ")
	if rule.Access == Public {
		// Public RPCs ignore credentials, so a stale token cannot break sign-in.
		return ctx, nil, rule, nil
	}
	if rule.Access == Node {
		if reason := nodeRefusal(ctx); reason != "" {
			return ctx, nil, rule, connect.NewError(connect.CodeUnauthenticated, errors.New(reason))
		}
		if _, ok := NodeFrom(ctx); !ok {
			return ctx, nil, rule, connect.NewError(connect.CodeUnauthenticated, errors.New("a valid node certificate is required"))
		}
		return ctx, nil, rule, nil
	}
	if !hasBearer || secret == "" {
		return ctx, nil, rule, connect.NewError(connect.CodeUnauthenticated, errors.New("sign in first: missing `Authorization: Bearer` token"))
	}
	var org uuid.UUID
	if rule.Access == OrgRole {
		org = requestedOrg(msg)
	}
	p, err := i.principal(ctx, strings.TrimSpace(secret), org)
	if err != nil {
		return ctx, nil, rule, err
	}
	return WithPrincipal(ctx, p), p, rule, nil
}

// errAuthUnavailable hides the cause (a database error) from callers; it is transient.
var errAuthUnavailable = connect.NewError(connect.CodeUnavailable, errors.New("cannot check credentials right now; try again"))

var errBadToken = connect.NewError(connect.CodeUnauthenticated, errors.New("invalid or expired token: sign in again"))

// requestedOrg is the organization an organization-scoped request names, or uuid.Nil when
// msg is nil or names none that parses (authorize then says what is wrong).
func requestedOrg(msg any) uuid.UUID {
	scoped, ok := msg.(orgScoped)
	if !ok {
		return uuid.Nil
	}
	id, err := uuid.Parse(scoped.GetOrganizationId())
	if err != nil {
		return uuid.Nil
	}
	return id
}

// principal resolves a bearer secret. For an access token and a non-nil org it also reads the
// user's role in org, which authorize then uses instead of asking again.
func (i *Interceptor) principal(ctx context.Context, secret string, org uuid.UUID) (*Principal, error) {
	kind, ok := BearerKind(secret)
	if !ok {
		return nil, errBadToken
	}
	hash, err := ParseToken(kind, secret)
	if err != nil {
		return nil, errBadToken
	}
	switch kind {
	case KindAccess:
		if org != uuid.Nil {
			s, err := i.lookup.SessionMemberByAccessToken(ctx, hash, org)
			if errors.Is(err, store.ErrNotFound) {
				return nil, errBadToken
			} else if err != nil {
				return nil, errAuthUnavailable
			}
			p := sessionPrincipal(s.SessionPrincipal)
			p.membership = &membership{orgID: org, role: s.Role}
			return p, nil
		}
		s, err := i.lookup.SessionByAccessToken(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadToken
		} else if err != nil {
			return nil, errAuthUnavailable
		}
		return sessionPrincipal(s), nil
	default: // KindAPI
		t, err := i.lookup.APITokenPrincipal(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadToken
		} else if err != nil {
			return nil, errAuthUnavailable
		}
		return &Principal{UserID: t.UserID, Email: t.Email, TokenID: t.TokenID, TokenOrgID: t.OrganizationID, TokenRole: t.Role}, nil
	}
}

func sessionPrincipal(s store.SessionPrincipal) *Principal {
	return &Principal{UserID: s.UserID, Email: s.Email, PlatformAdmin: s.PlatformAdmin, SessionID: s.SessionID}
}

// orgScoped is implemented by every request of an OrgRole RPC.
type orgScoped interface {
	GetOrganizationId() string
}

func (i *Interceptor) authorize(ctx context.Context, p *Principal, rule Rule, msg any) error {
	switch rule.Access {
	case Public, Node:
		return nil
	case SignedIn:
		if rule.SessionOnly && p.IsAPIToken() {
			return connect.NewError(connect.CodePermissionDenied, errors.New("API tokens cannot do this: sign in as a person"))
		}
		return nil
	case PlatformAdmin:
		if p.IsAPIToken() || !p.PlatformAdmin {
			return connect.NewError(connect.CodePermissionDenied, errors.New("platform admins only"))
		}
		return nil
	case OrgRole:
		scoped, ok := msg.(orgScoped)
		if !ok {
			return connect.NewError(connect.CodeInternal, errors.New("organization-scoped RPC without organization_id"))
		}
		orgID, err := uuid.Parse(scoped.GetOrganizationId())
		if err != nil {
			return FieldError("organization_id", "must be a UUID")
		}
		var role store.Role
		if p.IsAPIToken() {
			if rule.SessionOnly {
				return connect.NewError(connect.CodePermissionDenied, errors.New("API tokens cannot do this: sign in as a person"))
			}
			if orgID != p.TokenOrgID {
				return connect.NewError(connect.CodePermissionDenied, errors.New("this API token belongs to another organization"))
			}
			role = p.TokenRole
		} else {
			role, err = i.membershipRole(ctx, p, orgID)
			if errors.Is(err, store.ErrNotFound) {
				return connect.NewError(connect.CodePermissionDenied, errors.New("you are not a member of this organization"))
			} else if err != nil {
				return errAuthUnavailable
			}
		}
		if role < rule.Role {
			return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("this needs the %s role; you have %s", rule.Role, role))
		}
		p.OrgID, p.OrgRole = orgID, role
		return nil
	}
	return connect.NewError(connect.CodeInternal, errors.New("unknown access rule"))
}

// membershipRole is the session caller's role in orgID: the one read with the token when it
// was for this organization, else asked of the store. ErrNotFound for a non-member.
func (i *Interceptor) membershipRole(ctx context.Context, p *Principal, orgID uuid.UUID) (store.Role, error) {
	if m := p.membership; m != nil && m.orgID == orgID {
		if m.role == 0 {
			return 0, store.ErrNotFound
		}
		return m.role, nil
	}
	return i.lookup.MembershipRole(ctx, orgID, p.UserID)
}

func (i *Interceptor) validate(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := i.validator.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return connect.NewError(connect.CodeInternal, fmt.Errorf("validate request: %w", err))
	}
	var msgs []string
	details := &errdetails.BadRequest{}
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		msgs = append(msgs, field+": "+v.Proto.GetMessage())
		details.FieldViolations = append(details.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: field, Description: v.Proto.GetMessage(),
		})
	}
	return badRequest(strings.Join(msgs, "; "), details)
}

// FieldError is an InvalidArgument error about one request field, with the field named both
// in the message and in a google.rpc.BadRequest detail the dashboard shows next to the field.
// Handlers use it for bad input the schema's rules cannot express.
func FieldError(field, rule string) error {
	return badRequest(field+": "+rule, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: rule},
	}})
}

func badRequest(msg string, details *errdetails.BadRequest) error {
	cerr := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	if d, err := connect.NewErrorDetail(details); err == nil {
		cerr.AddDetail(d)
	}
	return cerr
}
