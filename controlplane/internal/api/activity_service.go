package api

import (
	"context"
	"errors"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/activity"
	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
)

// streamKeepalive is how often a live stream with nothing to say sends an empty message, so
// proxies and load balancers do not cut it as idle.
const streamKeepalive = 30 * time.Second

// ActivityService implements activityv1connect.ActivityServiceHandler.
type ActivityService struct {
	activityv1connect.UnimplementedActivityServiceHandler
	opts Options
}

// ListActivity lists the organization's events newest first, a page at a time.
func (s *ActivityService) ListActivity(ctx context.Context, req *connect.Request[activityv1.ListActivityRequest]) (*connect.Response[activityv1.ListActivityResponse], error) {
	p := mustPrincipal(ctx)
	f, err := storeActivityFilter(req.Msg.GetFilter())
	if err != nil {
		return nil, err
	}
	org := p.OrgID
	events, next, err := s.opts.Store.ListActivity(ctx, &org, f, int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, listingErr("activity", err)
	}
	return connect.NewResponse(&activityv1.ListActivityResponse{Events: eventMessages(events), NextPageToken: next}), nil
}

// StreamActivity sends the organization's new events that match the filter, as they commit,
// until the caller hangs up or the server shuts down. The filter's since and until do not
// apply: a live stream only ever carries new events.
//
// The first message is an empty keepalive, sent as soon as the stream is live: every event
// committed after it arrives. Clients that need no gap list recent activity after that first
// message and merge by id. Keepalives follow every 30 s of silence.
//
// A stream that falls behind (the caller reads slower than events come) ends with Aborted;
// the client reconnects and lists what it missed. When the server shuts down, streams end
// without an error, and clients reconnect (to another replica).
func (s *ActivityService) StreamActivity(ctx context.Context, req *connect.Request[activityv1.StreamActivityRequest], stream *connect.ServerStream[activityv1.StreamActivityResponse]) error {
	p := mustPrincipal(ctx)
	f, err := liveActivityFilter(req.Msg.GetFilter())
	if err != nil {
		return err
	}
	if s.opts.Hub == nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("live activity is not enabled on this server"))
	}
	sub := s.opts.Hub.Subscribe(p.OrgID, f)
	defer sub.Close()

	keepalive := time.NewTicker(streamKeepalive)
	defer keepalive.Stop()
	// ready is nil once the stream is live; until then the hub has not started listening, and
	// the stream sends nothing, not even keepalives, so its first message keeps its promise.
	ready := s.opts.Hub.Ready()
	live := func() error {
		if ready == nil {
			return nil
		}
		ready = nil
		keepalive.Reset(streamKeepalive)
		return stream.Send(&activityv1.StreamActivityResponse{})
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err() // the caller hung up
		case <-ready:
			if err := live(); err != nil {
				return err
			}
		case e, ok := <-sub.C:
			if !ok {
				if errors.Is(sub.Err(), activity.ErrLagged) {
					return connect.NewError(connect.CodeAborted,
						errors.New("the stream fell behind and was dropped: reconnect, and list activity to catch up"))
				}
				return nil // the hub stopped: the server is shutting down
			}
			if err := live(); err != nil {
				return err
			}
			if err := stream.Send(&activityv1.StreamActivityResponse{Event: eventMessage(e)}); err != nil {
				return err
			}
			keepalive.Reset(streamKeepalive)
		case <-keepalive.C:
			if ready != nil {
				continue
			}
			if err := stream.Send(&activityv1.StreamActivityResponse{}); err != nil {
				return err
			}
		}
	}
}

// storeActivityFilter turns a request's filter into a listing's.
func storeActivityFilter(f *activityv1.Filter) (store.ActivityFilter, error) {
	out := store.ActivityFilter{EventTypes: f.GetEventTypes(), EntityType: f.GetEntityType(), EntityID: f.GetEntityId()}
	if s := f.GetActorUserId(); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return out, auth.FieldError("filter.actor_user_id", "must be a UUID")
		}
		out.ActorUserID = &id
	}
	if f.GetSince() != nil {
		if err := f.GetSince().CheckValid(); err != nil {
			return out, auth.FieldError("filter.since", "must be a valid time")
		}
		t := f.GetSince().AsTime()
		out.Since = &t
	}
	if f.GetUntil() != nil {
		if err := f.GetUntil().CheckValid(); err != nil {
			return out, auth.FieldError("filter.until", "must be a valid time")
		}
		t := f.GetUntil().AsTime()
		out.Until = &t
	}
	if out.Since != nil && out.Until != nil && !out.Until.After(*out.Since) {
		return out, auth.FieldError("filter.until", "must be after filter.since")
	}
	return out, nil
}

// liveActivityFilter turns a request's filter into a subscription's; since and until do not
// apply to live events.
func liveActivityFilter(f *activityv1.Filter) (activity.Filter, error) {
	sf, err := storeActivityFilter(&activityv1.Filter{
		EventTypes: f.GetEventTypes(), ActorUserId: f.GetActorUserId(), EntityType: f.GetEntityType(), EntityId: f.GetEntityId(),
	})
	if err != nil {
		return activity.Filter{}, err
	}
	out := activity.Filter{EventTypes: sf.EventTypes, EntityType: sf.EntityType, EntityID: sf.EntityID}
	if sf.ActorUserID != nil {
		out.ActorUserID = *sf.ActorUserID
	}
	return out, nil
}

// listingErr maps the error of a paginated listing: a page token the store did not make is bad
// input, anything else as storeErr.
func listingErr(what string, err error) error {
	if errors.Is(err, store.ErrInvalidPageToken) {
		return auth.FieldError("page_token", "is invalid")
	}
	return storeErr(what, err)
}

func eventMessages(events []store.ActivityEvent) []*activityv1.Event {
	out := make([]*activityv1.Event, 0, len(events))
	for _, e := range events {
		out = append(out, eventMessage(e))
	}
	return out
}

// eventMessage is an activity event as the API shows it; the id is a decimal string because
// JSON numbers lose precision past 2^53.
func eventMessage(e store.ActivityEvent) *activityv1.Event {
	m := &activityv1.Event{
		Id: strconv.FormatInt(e.ID, 10), ActorKind: activityv1.ActorKind(e.ActorKind), ActorEmail: e.ActorEmail,
		EventType: e.EventType, EntityType: e.EntityType, EntityId: e.EntityID, Ip: e.IP, UserAgent: e.UserAgent,
		Metadata: e.Metadata, CreatedAt: ts(e.CreatedAt),
	}
	if e.OrganizationID != nil {
		m.OrganizationId = e.OrganizationID.String()
	}
	if e.ActorUserID != nil {
		m.ActorUserId = e.ActorUserID.String()
	}
	if e.ActorTokenID != nil {
		m.ActorTokenId = e.ActorTokenID.String()
	}
	return m
}
