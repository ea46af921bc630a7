package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"connectrpc.com/connect"

	activityv1 "skypanel/shared/gen/go/skypanel/activity/v1"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

// activityPageSize is the page the dashboard's activity view asks for.
const activityPageSize = 50

// apiClients are the generated Connect clients, shared by every simulated client (they are
// safe for concurrent use). They speak Connect's JSON, as the dashboard does.
type apiClients struct {
	auth     authv1connect.AuthServiceClient
	org      organizationv1connect.OrganizationServiceClient
	activity activityv1connect.ActivityServiceClient
}

// rpc is one RPC of the mix: it calls as who and checks the answer, returning how many items
// it holds.
type rpc struct {
	name string
	// procedure is the Connect path, the server's metrics label.
	procedure string
	call      func(ctx context.Context, c *apiClients, who caller) (items int, err error)
}

// errWrongAnswer marks a successful RPC whose answer is not what the seed implies.
var errWrongAnswer = errors.New("wrong answer")

func wrong(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errWrongAnswer, fmt.Sprintf(format, args...))
}

func as[T any](who caller, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+who.Token)
	return req
}

// mix is what every client calls, each request picking one at random: the reads a dashboard
// makes when it opens an organization.
var mix = []rpc{
	{"AuthService.WhoAmI", authv1connect.AuthServiceWhoAmIProcedure, func(ctx context.Context, c *apiClients, who caller) (int, error) {
		resp, err := c.auth.WhoAmI(ctx, as(who, &authv1.WhoAmIRequest{}))
		if err != nil {
			return 0, err
		}
		if got := resp.Msg.GetUser().GetId(); got != who.UserID.String() {
			return 0, wrong("WhoAmI answered user %q, want %s", got, who.UserID)
		}
		return 1, nil
	}},
	{"OrganizationService.ListOrganizations", organizationv1connect.OrganizationServiceListOrganizationsProcedure, func(ctx context.Context, c *apiClients, who caller) (int, error) {
		resp, err := c.org.ListOrganizations(ctx, as(who, &orgv1.ListOrganizationsRequest{}))
		if err != nil {
			return 0, err
		}
		if n := len(resp.Msg.GetOrganizations()); n != len(extraRoles)+1 {
			return n, wrong("ListOrganizations returned %d organizations, want %d", n, len(extraRoles)+1)
		}
		return len(resp.Msg.GetOrganizations()), nil
	}},
	{"OrganizationService.GetOrganization", organizationv1connect.OrganizationServiceGetOrganizationProcedure, func(ctx context.Context, c *apiClients, who caller) (int, error) {
		resp, err := c.org.GetOrganization(ctx, as(who, &orgv1.GetOrganizationRequest{OrganizationId: who.OrgID.String()}))
		if err != nil {
			return 0, err
		}
		if got := resp.Msg.GetOrganization().GetId(); got != who.OrgID.String() {
			return 0, wrong("GetOrganization answered organization %q, want %s", got, who.OrgID)
		}
		return 1, nil
	}},
	{"OrganizationService.ListMembers", organizationv1connect.OrganizationServiceListMembersProcedure, func(ctx context.Context, c *apiClients, who caller) (int, error) {
		resp, err := c.org.ListMembers(ctx, as(who, &orgv1.ListMembersRequest{OrganizationId: who.OrgID.String()}))
		if err != nil {
			return 0, err
		}
		if n := len(resp.Msg.GetMembers()); n != len(extraRoles)+1 {
			return n, wrong("ListMembers returned %d members, want %d", n, len(extraRoles)+1)
		}
		return len(resp.Msg.GetMembers()), nil
	}},
	{"ActivityService.ListActivity", activityv1connect.ActivityServiceListActivityProcedure, func(ctx context.Context, c *apiClients, who caller) (int, error) {
		resp, err := c.activity.ListActivity(ctx, as(who, &activityv1.ListActivityRequest{
			OrganizationId: who.OrgID.String(), PageSize: activityPageSize,
		}))
		if err != nil {
			return 0, err
		}
		events := resp.Msg.GetEvents()
		if len(events) == 0 || len(events) > activityPageSize {
			return len(events), wrong("ListActivity returned %d events, want 1 to %d", len(events), activityPageSize)
		}
		for _, e := range events {
			if e.GetOrganizationId() != who.OrgID.String() {
				return len(events), wrong("ListActivity returned an event of organization %q", e.GetOrganizationId())
			}
		}
		return len(events), nil
	}},
}

// opStats is what one client saw of one RPC during the measured phase.
type opStats struct {
	latencies []time.Duration
	items     int
	// errors counts failures by their text (Connect code and message).
	errors map[string]int
}

// result is the measured phase.
type result struct {
	// ops is indexed like mix.
	ops     []opStats
	elapsed time.Duration
	usage   usage
}

// drive runs the warm-up and the measured phase and returns what the clients saw.
func drive(ctx context.Context, cfg Config, cp *controlPlane, s *seeded, logf func(string, ...any)) (*result, error) {
	httpClient := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        2 * cfg.Clients,
			MaxIdleConnsPerHost: 2 * cfg.Clients,
			IdleConnTimeout:     time.Minute,
		},
	}
	defer httpClient.CloseIdleConnections()
	c := &apiClients{
		auth:     authv1connect.NewAuthServiceClient(httpClient, cp.url, connect.WithProtoJSON()),
		org:      organizationv1connect.NewOrganizationServiceClient(httpClient, cp.url, connect.WithProtoJSON()),
		activity: activityv1connect.NewActivityServiceClient(httpClient, cp.url, connect.WithProtoJSON()),
	}

	begin := time.Now()
	measureFrom := begin.Add(cfg.Warmup)
	measureTo := measureFrom.Add(cfg.Duration)

	// Take the "before" snapshot and start profiles when the warm-up ends, and the "after"
	// one when the measured phase does, while the clients keep running.
	var before, after usage
	var probeErr error
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		sleepUntil(ctx, measureFrom)
		logf("warm-up over; measuring")
		before = takeUsage(ctx, cp)
		stopProfiles, err := startProfiles(cfg)
		if err != nil {
			probeErr = err
			return
		}
		sleepUntil(ctx, measureTo)
		after = takeUsage(ctx, cp)
		probeErr = stopProfiles()
	}()

	perClient := make([][]opStats, len(s.Callers))
	var wg sync.WaitGroup
	for i, who := range s.Callers {
		stats := make([]opStats, len(mix))
		for k := range stats {
			stats[k].errors = map[string]int{}
		}
		perClient[i] = stats
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			record := func(op int, due, start time.Time, items int, err error) {
				if start.Before(measureFrom) {
					return
				}
				st := &stats[op]
				st.latencies = append(st.latencies, time.Since(due))
				st.items += items
				if err != nil {
					st.errors[errText(err)]++
				}
			}
			if cfg.Rate == 0 {
				for ctx.Err() == nil {
					start := time.Now()
					if !start.Before(measureTo) {
						return
					}
					op := rng.IntN(len(mix))
					items, err := mix[op].call(ctx, c, who)
					record(op, start, start, items, err)
				}
				return
			}
			// Open loop: requests are due at a fixed pace whatever the server does; one that
			// starts late counts its wait, so a slow server cannot hide its queue.
			interval := time.Duration(float64(time.Second) * float64(len(s.Callers)) / cfg.Rate)
			due := begin.Add(time.Duration(rng.Int64N(int64(interval))))
			for ; due.Before(measureTo) && ctx.Err() == nil; due = due.Add(interval) {
				sleepUntil(ctx, due)
				op := rng.IntN(len(mix))
				start := time.Now()
				items, err := mix[op].call(ctx, c, who)
				record(op, due, start, items, err)
			}
		}()
	}
	wg.Wait()
	<-probed
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if probeErr != nil {
		return nil, probeErr
	}

	res := &result{ops: make([]opStats, len(mix)), elapsed: cfg.Duration, usage: after.since(before)}
	for k := range mix {
		res.ops[k].errors = map[string]int{}
		for _, stats := range perClient {
			res.ops[k].latencies = append(res.ops[k].latencies, stats[k].latencies...)
			res.ops[k].items += stats[k].items
			for e, n := range stats[k].errors {
				res.ops[k].errors[e] += n
			}
		}
	}
	return res, nil
}

func errText(err error) string {
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		return cerr.Code().String() + ": " + cerr.Message()
	}
	return err.Error()
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// startProfiles starts the profiles cfg asks for and returns what stops and writes them.
func startProfiles(cfg Config) (stop func() error, err error) {
	var cpuFile *os.File
	if cfg.CPUProfile != "" {
		if cpuFile, err = os.Create(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if cfg.BlockProfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpuFile.Close())
		}
		if cfg.BlockProfile != "" {
			f, err := os.Create(cfg.BlockProfile)
			if err == nil {
				err = pprof.Lookup("block").WriteTo(f, 0)
				errs = append(errs, f.Close())
			}
			runtime.SetBlockProfileRate(0)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}, nil
}
