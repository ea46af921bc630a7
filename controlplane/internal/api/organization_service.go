package api

import "skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"

// OrganizationService implements organizationv1connect.OrganizationServiceHandler.
type OrganizationService struct {
	organizationv1connect.UnimplementedOrganizationServiceHandler
	opts Options
}
