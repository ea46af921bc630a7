package api

import "skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"

// AuthService implements authv1connect.AuthServiceHandler.
type AuthService struct {
	authv1connect.UnimplementedAuthServiceHandler
	opts Options
}
