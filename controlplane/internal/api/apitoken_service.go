package api

import "skypanel/shared/gen/go/skypanel/apitoken/v1/apitokenv1connect"

// APITokenService implements apitokenv1connect.APITokenServiceHandler.
type APITokenService struct {
	apitokenv1connect.UnimplementedAPITokenServiceHandler
	opts Options
}
