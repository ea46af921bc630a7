package api

import (
	"context"
	"errors"
	"slices"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	adminv1 "skypanel/shared/gen/go/skypanel/admin/v1"
	"skypanel/shared/gen/go/skypanel/admin/v1/adminv1connect"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
)

// AdminService implements adminv1connect.AdminServiceHandler. Only platform admins' sessions
// reach it (the interceptor sees to that).
type AdminService struct {
	adminv1connect.UnimplementedAdminServiceHandler
	opts Options
}

// ListUsers lists users newest first, optionally only those whose email or display name
// contains the query.
func (s *AdminService) ListUsers(ctx context.Context, req *connect.Request[adminv1.ListUsersRequest]) (*connect.Response[adminv1.ListUsersResponse], error) {
	users, next, err := s.opts.Store.ListUsers(ctx, req.Msg.GetQuery(), int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, listingErr("users", err)
	}
	resp := &adminv1.ListUsersResponse{Users: make([]*authv1.User, 0, len(users)), NextPageToken: next}
	for _, u := range users {
		resp.Users = append(resp.Users, authUser(u))
	}
	return connect.NewResponse(resp), nil
}

// ListOrganizations lists organizations newest first, with their owner and member count,
// optionally only those whose name or slug contains the query.
func (s *AdminService) ListOrganizations(ctx context.Context, req *connect.Request[adminv1.ListOrganizationsRequest]) (*connect.Response[adminv1.ListOrganizationsResponse], error) {
	orgs, next, err := s.opts.Store.ListOrganizations(ctx, req.Msg.GetQuery(), int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, listingErr("organizations", err)
	}
	resp := &adminv1.ListOrganizationsResponse{Organizations: make([]*adminv1.OrganizationSummary, 0, len(orgs)), NextPageToken: next}
	for _, o := range orgs {
		resp.Organizations = append(resp.Organizations, &adminv1.OrganizationSummary{
			Id: o.ID.String(), Name: o.Name, Slug: o.Slug, OwnerEmail: o.OwnerEmail,
			MemberCount: int32(o.MemberCount), CreatedAt: ts(o.CreatedAt),
		})
	}
	return connect.NewResponse(resp), nil
}

// SetUserDisabled disables a user, which ends every session of theirs at once (and stops
// their API tokens, whose creator must be enabled), or enables them again. Admins cannot
// disable themselves. Setting the state a user already has changes nothing and logs nothing.
func (s *AdminService) SetUserDisabled(ctx context.Context, req *connect.Request[adminv1.SetUserDisabledRequest]) (*connect.Response[adminv1.SetUserDisabledResponse], error) {
	p := mustPrincipal(ctx)
	id, err := uuid.Parse(req.Msg.GetUserId())
	if err != nil {
		return nil, auth.FieldError("user_id", "must be a UUID")
	}
	disable := req.Msg.GetDisabled()
	if disable && id == p.UserID {
		return nil, failedPrecondition("you cannot disable your own account: ask another platform admin")
	}
	var user store.User
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if err := lockCallerAsAdmin(ctx, q, p); err != nil {
			return err
		}
		before, err := q.UserByID(ctx, id)
		if err != nil {
			return err
		}
		if disable {
			// Even when already disabled: it also ends any session that slipped through.
			user, err = q.DisableUser(ctx, id)
		} else {
			user, err = q.EnableUser(ctx, id)
		}
		if err != nil || (before.DisabledAt != nil) == disable {
			return err
		}
		eventType := "admin.user.enabled"
		if disable {
			eventType = "admin.user.disabled"
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, eventType, "user", user.ID.String(),
			map[string]string{"email": user.Email}))
		return err
	})
	if err != nil {
		return nil, storeErr("user", err)
	}
	return connect.NewResponse(&adminv1.SetUserDisabledResponse{User: authUser(user)}), nil
}

// SetPlatformAdmin grants or revokes platform admin. Admins cannot revoke their own, so every
// revocation leaves the admin who made it: the platform never runs out of admins this way.
func (s *AdminService) SetPlatformAdmin(ctx context.Context, req *connect.Request[adminv1.SetPlatformAdminRequest]) (*connect.Response[adminv1.SetPlatformAdminResponse], error) {
	p := mustPrincipal(ctx)
	id, err := uuid.Parse(req.Msg.GetUserId())
	if err != nil {
		return nil, auth.FieldError("user_id", "must be a UUID")
	}
	grant := req.Msg.GetPlatformAdmin()
	if !grant && id == p.UserID {
		return nil, failedPrecondition("you cannot revoke your own platform admin: ask another platform admin")
	}
	var user store.User
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if err := lockCallerAsAdmin(ctx, q, p); err != nil {
			return err
		}
		before, err := q.UserByID(ctx, id)
		if err != nil {
			return err
		}
		user, err = q.SetPlatformAdmin(ctx, id, grant)
		if err != nil || before.PlatformAdmin == grant {
			return err
		}
		eventType := "admin.user.platform_admin_revoked"
		if grant {
			eventType = "admin.user.platform_admin_granted"
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, eventType, "user", user.ID.String(),
			map[string]string{"email": user.Email}))
		return err
	})
	if err != nil {
		return nil, storeErr("user", err)
	}
	return connect.NewResponse(&adminv1.SetPlatformAdminResponse{User: authUser(user)}), nil
}

// ListActivity lists events across the platform newest first, platform-wide ones included,
// optionally of one organization only.
func (s *AdminService) ListActivity(ctx context.Context, req *connect.Request[adminv1.ListActivityRequest]) (*connect.Response[adminv1.ListActivityResponse], error) {
	var org *uuid.UUID
	if raw := req.Msg.GetOrganizationId(); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			return nil, auth.FieldError("organization_id", "must be a UUID")
		}
		org = &id
	}
	f, err := storeActivityFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, err
	}
	events, next, err := s.opts.Store.ListActivity(ctx, org, f, int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, listingErr("activity", err)
	}
	return connect.NewResponse(&adminv1.ListActivityResponse{Events: eventMessages(events), NextPageToken: next}), nil
}

// lockCallerAsAdmin locks the platform's admins and checks that the caller is still one of
// them: of two admins demoting or disabling each other at once, the second finds it no
// longer may.
func lockCallerAsAdmin(ctx context.Context, q *store.Queries, p *auth.Principal) error {
	admins, err := q.LockActivePlatformAdmins(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(admins, p.UserID) {
		return connect.NewError(connect.CodePermissionDenied, errors.New("platform admins only"))
	}
	return nil
}
