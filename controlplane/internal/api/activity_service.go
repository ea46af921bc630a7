package api

import "skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"

// ActivityService implements activityv1connect.ActivityServiceHandler.
type ActivityService struct {
	activityv1connect.UnimplementedActivityServiceHandler
	opts Options
}
