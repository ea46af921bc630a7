package api

import "skypanel/shared/gen/go/skypanel/admin/v1/adminv1connect"

// AdminService implements adminv1connect.AdminServiceHandler.
type AdminService struct {
	adminv1connect.UnimplementedAdminServiceHandler
	opts Options
}
