package api

import "skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"

// InvitationService implements organizationv1connect.InvitationServiceHandler.
type InvitationService struct {
	organizationv1connect.UnimplementedInvitationServiceHandler
	opts Options
}
