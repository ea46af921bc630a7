package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/store"
	domainv1 "skypanel/shared/gen/go/skypanel/domain/v1"
	"skypanel/shared/gen/go/skypanel/domain/v1/domainv1connect"
	"skypanel/shared/workload"
)

// DomainService implements domainv1connect.DomainServiceHandler.
type DomainService struct {
	domainv1connect.UnimplementedDomainServiceHandler
	opts Options
}

// AddDomain attaches a hostname to an app, to be verified.
func (s *DomainService) AddDomain(ctx context.Context, req *connect.Request[domainv1.AddDomainRequest]) (*connect.Response[domainv1.AddDomainResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	host, err := workload.NormalizeHostname(req.Msg.GetHostname(), false)
	if err != nil {
		return nil, invalid(workload.FieldErrors{{Field: "hostname", Reason: err.Error()}})
	}
	apps := s.opts.Deploy.AppsDomain()
	if host == apps || strings.HasSuffix(host, "."+apps) {
		return nil, invalid(workload.FieldErrors{{Field: "hostname", Reason: "names under " + apps + " are the platform's default hostnames"}})
	}
	method := int16(req.Msg.GetMethod())
	if method == 0 {
		method = deploy.MethodDNSTXT
	}
	var d store.Domain
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		app, err := q.LockApp(ctx, orgID, appID)
		if err != nil {
			return storeErr("app", err)
		}
		d, err = q.InsertDomain(ctx, store.Domain{AppID: app.ID, OrganizationID: orgID, Hostname: host, Method: method,
			Token: deploy.NewDomainToken()})
		if errors.Is(err, store.ErrConflict) {
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("hostname: %s is already in use on this platform", host))
		}
		if err != nil {
			return storeErr("domain", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "domain.added", "domain", d.ID.String(),
			map[string]string{"hostname": host, "app": app.Name}))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.syncEdges(ctx, d.AppID) // an HTTP proof is served by the edges
	return connect.NewResponse(&domainv1.AddDomainResponse{Domain: domainProto(d)}), nil
}

// ListDomains lists an app's domains.
func (s *DomainService) ListDomains(ctx context.Context, req *connect.Request[domainv1.ListDomainsRequest]) (*connect.Response[domainv1.ListDomainsResponse], error) {
	orgID, appID := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetAppId())
	if _, err := s.opts.Store.App(ctx, orgID, appID); err != nil {
		return nil, storeErr("app", err)
	}
	ds, err := s.opts.Store.AppDomains(ctx, orgID, appID)
	if err != nil {
		return nil, storeErr("domains", err)
	}
	out := &domainv1.ListDomainsResponse{}
	for _, d := range ds {
		out.Domains = append(out.Domains, domainProto(d))
	}
	return connect.NewResponse(out), nil
}

// VerifyDomain checks the ownership proof now. A verified domain joins its app's routes and
// gets a certificate requested.
func (s *DomainService) VerifyDomain(ctx context.Context, req *connect.Request[domainv1.VerifyDomainRequest]) (*connect.Response[domainv1.VerifyDomainResponse], error) {
	orgID, id := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetDomainId())
	d, err := s.opts.Store.Domain(ctx, orgID, id)
	if err != nil {
		return nil, storeErr("domain", err)
	}
	if d.VerifiedAt == nil {
		if verr := s.opts.Deploy.Verifier().Verify(ctx, d); verr != nil {
			if err := s.opts.Store.SetDomainError(ctx, d.ID, verr.Error()); err != nil {
				return nil, storeErr("domain", err)
			}
			return nil, failedPrecondition("%s is not verified: %v", d.Hostname, verr)
		}
		err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
			if err := q.SetDomainVerified(ctx, d.ID); err != nil {
				return storeErr("domain", err)
			}
			if err := s.opts.Deploy.RequestCertificate(ctx, q, d.ID); err != nil {
				return storeErr("certificate", err)
			}
			_, err := q.InsertActivity(ctx, event(ctx, orgID, "domain.verified", "domain", d.ID.String(),
				map[string]string{"hostname": d.Hostname}))
			return err
		})
		if err != nil {
			return nil, err
		}
		s.syncEdges(ctx, d.AppID)
		if d, err = s.opts.Store.Domain(ctx, orgID, id); err != nil {
			return nil, storeErr("domain", err)
		}
	}
	return connect.NewResponse(&domainv1.VerifyDomainResponse{Domain: domainProto(d)}), nil
}

// SetPrimaryDomain makes a verified domain its app's URL.
func (s *DomainService) SetPrimaryDomain(ctx context.Context, req *connect.Request[domainv1.SetPrimaryDomainRequest]) (*connect.Response[domainv1.SetPrimaryDomainResponse], error) {
	orgID, id := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetDomainId())
	var d store.Domain
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if d, err = q.Domain(ctx, orgID, id); err != nil {
			return storeErr("domain", err)
		}
		if d.VerifiedAt == nil {
			return failedPrecondition("%s is not verified yet", d.Hostname)
		}
		if _, err := q.LockApp(ctx, orgID, d.AppID); err != nil {
			return storeErr("app", err)
		}
		if err := q.SetPrimaryDomain(ctx, d.AppID, d.ID); err != nil {
			return storeErr("domain", err)
		}
		d.Primary = true
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "domain.primary_set", "domain", d.ID.String(),
			map[string]string{"hostname": d.Hostname}))
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&domainv1.SetPrimaryDomainResponse{Domain: domainProto(d)}), nil
}

// RemoveDomain detaches a domain; the edges drop its route and certificate.
func (s *DomainService) RemoveDomain(ctx context.Context, req *connect.Request[domainv1.RemoveDomainRequest]) (*connect.Response[domainv1.RemoveDomainResponse], error) {
	orgID, id := uuid.MustParse(req.Msg.GetOrganizationId()), uuid.MustParse(req.Msg.GetDomainId())
	var d store.Domain
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if d, err = q.Domain(ctx, orgID, id); err != nil {
			return storeErr("domain", err)
		}
		if err := q.DeleteDomain(ctx, d.ID); err != nil {
			return storeErr("domain", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, orgID, "domain.removed", "domain", d.ID.String(),
			map[string]string{"hostname": d.Hostname}))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.syncEdges(ctx, d.AppID)
	return connect.NewResponse(&domainv1.RemoveDomainResponse{}), nil
}

// syncEdges pushes the change to the edges now; the periodic sync retries what fails here.
func (s *DomainService) syncEdges(ctx context.Context, appID uuid.UUID) {
	if err := s.opts.Deploy.SyncEdges(ctx, appID); err != nil {
		s.opts.Logger.Warn("edge sync after a domain change", "app_id", appID, "err", err)
	}
}

var certificateStates = map[string]domainv1.CertificateState{
	"none": domainv1.CertificateState_CERTIFICATE_STATE_NONE, "pending": domainv1.CertificateState_CERTIFICATE_STATE_PENDING,
	"issued": domainv1.CertificateState_CERTIFICATE_STATE_ISSUED, "failed": domainv1.CertificateState_CERTIFICATE_STATE_FAILED,
}

func domainProto(d store.Domain) *domainv1.Domain {
	out := &domainv1.Domain{Id: d.ID.String(), AppId: d.AppID.String(), Hostname: d.Hostname,
		Method: domainv1.VerificationMethod(d.Method), Token: d.Token, Verified: d.VerifiedAt != nil, Primary: d.Primary,
		CertificateState: certificateStates[d.CertificateState], Error: d.Error, CreatedAt: timestamppb.New(d.CreatedAt)}
	switch d.Method {
	case deploy.MethodDNSTXT:
		out.RecordName, out.RecordValue = deploy.TXTRecordName(d.Hostname), d.Token
	case deploy.MethodHTTP:
		out.RecordName, out.RecordValue = deploy.VerificationURL(d.Hostname, d.Token), d.Token
	}
	if d.VerifiedAt != nil {
		out.VerifiedAt = timestamppb.New(*d.VerifiedAt)
	}
	if d.CertExpiresAt != nil {
		out.CertificateExpiresAt = timestamppb.New(*d.CertExpiresAt)
	}
	return out
}
