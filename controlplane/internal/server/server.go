// Package server runs the control plane's public listener: the Connect API, the embedded
// dashboard, health and metrics endpoints, and the background job runner. It owns timeouts and
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"skypanel/controlplane/internal/activity"
	"skypanel/controlplane/internal/api"
	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/request"
	"skypanel/controlplane/internal/store"
)

// Options are the server's dependencies.
type Options struct {
	Config *config.Config
	Store  *store.Store
	Logger *slog.Logger
	// PasswordParams override argon2id's costs (tests use cheap ones). Zero means the default.
	PasswordParams auth.PasswordParams
}

// Server is the control plane's public side.
type Server struct {
	cfg     *config.Config
	store   *store.Store
	logger  *slog.Logger
	jobs    *river.Client[pgx.Tx]
	hub     *activity.Hub
	handler http.Handler
}

// New wires the server. It does not listen or start background work; Run does.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Store == nil || opts.Logger == nil {
		return nil, errors.New("new server: Config, Store and Logger are required")
	}
	cfg, logger := opts.Config, opts.Logger
	params := opts.PasswordParams
	if params == (auth.PasswordParams{}) {
		params = auth.DefaultPasswordParams()
	}

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, mail.NewWorker(cfg.Mail, logger)); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	jobs, err := river.NewClient(riverpgxv5.New(opts.Store.Pool()), &river.Config{
		Logger:  logger.With("component", "jobs"),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// Completed jobs (which may hold emailed links) are deleted soon after they finish.
		CompletedJobRetentionPeriod: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("new server: job client: %w", err)
	}
	hub := activity.NewHub(opts.Store, logger)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newRPCMetrics(reg)

	mux := http.NewServeMux()
	err = api.Register(mux, api.Options{
		Store:          opts.Store,
		Mail:           mail.NewEnqueuer(jobs),
		Hub:            hub,
		Logger:         logger.With("component", "api"),
		Limiter:        auth.NewLoginLimiter(cfg.LoginFailuresPerAccount, cfg.LoginFailuresPerAddress, cfg.LoginFailureWindow),
		PublicURL:      cfg.PublicURL,
		AccessTokenTTL: cfg.AccessTokenTTL,
		SessionTTL:     cfg.SessionTTL,
		InvitationTTL:  cfg.InvitationTTL,
		PasswordParams: params,
	},
		// Interceptors run outermost first: metrics and logs see every outcome, auth errors too.
		connect.WithInterceptors(metrics, newErrorLogger(logger.With("component", "rpc"))),
		connect.WithReadMaxBytes(1<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := opts.Store.Ping(ctx); err != nil {
			logger.Warn("not ready: database unreachable", "err", err)
			http.Error(w, "database unreachable\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", dashboard())

	return &Server{
		cfg: cfg, store: opts.Store, logger: logger, jobs: jobs, hub: hub,
		handler: request.Middleware(withDeadlines(mux), cfg.TrustProxyHeaders),
	}, nil
}

// Handler is the server's HTTP handler (for tests that serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Run starts background work and serves on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within the shutdown timeout,
// ends live streams, and stops the job runner after its running jobs.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	if err := s.jobs.Start(bg); err != nil {
		return fmt.Errorf("run: start jobs: %w", err)
	}
	// Live streams end when the hub stops, which Shutdown triggers first: streams never
	// finish on their own and would hold Shutdown for its whole timeout.
	hubCtx, stopHub := context.WithCancel(bg)
	defer stopHub()
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); s.hub.Run(hubCtx) }()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No whole-request Read/WriteTimeout: they would cut live streams. Unary RPCs get
		// per-request deadlines in withDeadlines instead.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return bg },
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(stopHub)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("listening", "addr", ln.Addr().String(), "public_url", s.cfg.PublicURL)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	stopBG()
	if stopErr := s.jobs.Stop(shutdownCtx); stopErr != nil && err == nil {
		err = stopErr
	}
	<-hubDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}
