// Package server runs the control plane's public listener: the Connect API, the embedded
// dashboard, health and metrics endpoints, and the background job runner. It owns timeouts and
// graceful shutdown.
package server

import (
	"compress/gzip"
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
	"skypanel/controlplane/internal/billing"
	"skypanel/controlplane/internal/ca"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/deploy"
	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/nodes"
	"skypanel/controlplane/internal/request"
	"skypanel/controlplane/internal/secrets"
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

// Server is the control plane: its public listener (API, dashboard) and its agent listener.
type Server struct {
	cfg       *config.Config
	store     *store.Store
	logger    *slog.Logger
	jobs      *river.Client[pgx.Tx]
	deploy    *deploy.Deployer
	rules     *billing.Rules
	hub       *activity.Hub
	nodes     *nodes.Manager
	authority *ca.Authority
	handler   http.Handler
	agent     http.Handler
}

// Listeners are where Run serves.
type Listeners struct {
	// Public serves the dashboard and the API (plain HTTP; put TLS in front in production).
	Public net.Listener
	// Agent serves agents; Run wraps it in TLS. Nil: no agent listener.
	Agent net.Listener
}

// edgeSyncInterval is how often every cluster's edges are checked against their routes (changes
// are pushed at once; this catches new edge nodes and anything missed).
const edgeSyncInterval = 15 * time.Second

// compressMinBytes is the smallest response body the API gzips for clients that accept it.
const compressMinBytes = 1024

// newFastGzipWriter compresses responses at gzip's fastest level. The default level resets
// 640 KB of match tables for every response, which costs more CPU than compressing a
// response of a few kilobytes; the fastest level resets almost nothing and still shrinks
// JSON several times.
func newFastGzipWriter() connect.Compressor {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // the level is valid
	return w
}

// newGzipReader decompresses gzipped requests.
func newGzipReader() connect.Decompressor { return &gzip.Reader{} }

// New wires the server: it loads the master key and the platform CA (making the CA on the
// first start). It does not listen or start background work; Run does.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Config == nil || opts.Store == nil || opts.Logger == nil {
		return nil, errors.New("new server: Config, Store and Logger are required")
	}
	cfg, logger := opts.Config, opts.Logger
	keyring, err := secrets.LoadKeyFile(cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	authority, err := ca.Load(ctx, opts.Store, keyring, ca.Hosts(cfg.AgentURL, cfg.AgentListen))
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	nodeManager := nodes.New(nodes.Options{Store: opts.Store, Keyring: keyring, Logger: logger.With("component", "nodes"),
		ReportInterval: cfg.ReportInterval, NodeTTL: cfg.NodeTTL, NodeGrace: cfg.NodeGrace})
	params := opts.PasswordParams
	if params == (auth.PasswordParams{}) {
		params = auth.DefaultPasswordParams()
	}

	deployer := deploy.New(deploy.Options{Store: opts.Store, Keyring: keyring, Nodes: nodeManager,
		Logger: logger.With("component", "deploy"), AppsDomain: cfg.AppsDomain, StepTimeout: cfg.DeployStepTimeout, Poll: cfg.DeployPoll,
		Verifier: deploy.Verifier{DNSServer: cfg.DNSResolver}, Authority: authority,
		ACME: deploy.ACME{DirectoryURL: cfg.ACMEDirectory, Email: cfg.ACMEEmail, CAFile: cfg.ACMECAFile}})
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, mail.NewWorker(cfg.Mail, logger)); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := river.AddWorkerSafely(workers, deployer.Worker()); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := river.AddWorkerSafely(workers, deployer.CertWorker()); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	meter, err := billing.New(billing.Options{Store: opts.Store, Logger: logger.With("component", "billing")})
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := river.AddWorkerSafely(workers, meter.Worker()); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	invoicer, err := billing.NewInvoicer(billing.InvoiceOptions{Store: opts.Store, Logger: logger.With("component", "invoices")})
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := river.AddWorkerSafely(workers, invoicer.Worker()); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	jobs, err := river.NewClient(riverpgxv5.New(opts.Store.Pool()), &river.Config{
		Logger:  logger.With("component", "jobs"),
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// Completed jobs (which may hold emailed links) are deleted soon after they finish.
		CompletedJobRetentionPeriod: time.Hour,
		// Jobs are short (mail times out at 30 s; a deployment job hands back after 15 s; a
		// certificate order gets 45 s), so a job still marked running after this was cut off
		// by a crash: run it again soon.
		JobTimeout:           30 * time.Second,
		RescueStuckJobsAfter: time.Minute,
		// Hourly metering (it also runs at start, to catch up after downtime). A run rescued
		// while another still goes charges nothing twice: the usage ledger is keyed by
		// resource and hour.
		// Hourly too, after metering: the invoices of finished months, once each.
		PeriodicJobs: []*river.PeriodicJob{meter.PeriodicJob(), invoicer.PeriodicJob()},
	})
	if err != nil {
		return nil, fmt.Errorf("new server: job client: %w", err)
	}
	deployer.SetJobs(jobs)
	mailer := mail.NewEnqueuer(jobs)
	rules, err := billing.NewRules(billing.RulesOptions{Store: opts.Store, Suspender: deployer, Mail: mailer,
		Threshold: int64(cfg.LowBalanceThreshold), Grace: cfg.BillingGracePeriod, PublicURL: cfg.PublicURL,
		Logger: logger.With("component", "balance")})
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	hub := activity.NewHub(opts.Store, logger)
	payments, err := newPaymentProvider(cfg)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newRPCMetrics(reg)

	apiOpts := api.Options{
		Store:          opts.Store,
		Mail:           mailer,
		Hub:            hub,
		Logger:         logger.With("component", "api"),
		Limiter:        auth.NewLoginLimiter(cfg.LoginFailuresPerAccount, cfg.LoginFailuresPerAddress, cfg.LoginFailureWindow),
		PublicURL:      cfg.PublicURL,
		AccessTokenTTL: cfg.AccessTokenTTL,
		SessionTTL:     cfg.SessionTTL,
		InvitationTTL:  cfg.InvitationTTL,
		PasswordParams: params,
		Keyring:        keyring,
		Authority:      authority,
		Nodes:          nodeManager,
		AgentURL:       cfg.AgentURL,
		NodeCertTTL:    cfg.NodeCertTTL,
		Deploy:         deployer,
		Rules:          rules,
		Meter:          meter,

		// Top-ups (nil Payments: none).
		Payments:        payments,
		BillingCurrency: cfg.BillingCurrency,
	}
	handlerOpts := []connect.HandlerOption{
		// Interceptors run outermost first: metrics and logs see every outcome, auth errors too.
		connect.WithInterceptors(metrics, newErrorLogger(logger.With("component", "rpc"))),
		connect.WithReadMaxBytes(1 << 20),
		// Gzip only responses worth it: setting up a compressor costs more CPU than a reply of
		// a few hundred bytes saves on the wire (20% of the server's CPU under load, profiled).
		connect.WithCompressMinBytes(compressMinBytes),
		connect.WithCompression("gzip", newGzipReader, newFastGzipWriter),
	}
	mux := http.NewServeMux()
	if err := api.RegisterPublic(mux, apiOpts, handlerOpts...); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	agentMux := http.NewServeMux()
	if err := api.RegisterAgent(agentMux, apiOpts, handlerOpts...); err != nil {
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
	// The platform CA, which issues the apps' default hostnames' certificates: browsers trust
	// https://<app>-<org>.<apps domain> once it is imported.
	mux.HandleFunc("GET /platform-ca.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(authority.CertPEM())
	})
	dl := downloads(cfg.DownloadsDir, cfg.PublicURL)
	mux.Handle("GET /downloads/", dl)
	mux.Handle("GET /setup-worker.sh", dl)
	if err := registerPayments(mux, opts.Store, payments, cfg.PublicURL, logger.With("component", "payments")); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	mux.Handle("/", dashboard())

	return &Server{
		cfg: cfg, store: opts.Store, logger: logger, jobs: jobs, hub: hub, nodes: nodeManager, authority: authority,
		deploy:  deployer,
		rules:   rules,
		handler: request.Middleware(withDeadlines(mux), cfg.TrustProxyHeaders),
		agent:   request.Middleware(withDeadlines(nodeIdentity(agentMux, opts.Store, nodeManager)), false),
	}, nil
}

// Authority is the platform CA (tests enroll simulated agents with it).
func (s *Server) Authority() *ca.Authority { return s.authority }

// Handler is the server's HTTP handler (for tests that serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Run starts background work and serves on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within the shutdown timeout,
// ends live streams, and stops the job runner after its running jobs.
func (s *Server) Run(ctx context.Context, ls Listeners) error {
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
	nodesDone := make(chan struct{})
	go func() { defer close(nodesDone); s.nodes.Run(hubCtx) }()
	deployDone := make(chan struct{})
	go func() { defer close(deployDone); s.deploy.Run(hubCtx, edgeSyncInterval) }()
	rulesDone := make(chan struct{})
	go func() { defer close(rulesDone); s.rules.Run(hubCtx) }()
	if s.cfg.DebugListen != "" {
		_, stopDebug, err := serveDebug(s.cfg.DebugListen, s.logger)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		defer stopDebug()
	}

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
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ls.Public) }()
	s.logger.Info("listening", "addr", ls.Public.Addr().String(), "public_url", s.cfg.PublicURL)
	var agents *agentServer
	if ls.Agent != nil {
		// Agent sessions are long streams: like the public listener, no whole-request timeouts.
		agentSrv := &http.Server{
			Handler:           s.agent,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			BaseContext:       func(net.Listener) context.Context { return bg },
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		}
		agentSrv.RegisterOnShutdown(stopHub)
		var err error
		if agents, err = newAgentServer(agentSrv, s.authority.ServerTLS(), s.logger); err != nil {
			return fmt.Errorf("agent listener: %w", err)
		}
		go func() { errc <- agents.Serve(ls.Agent) }()
		s.logger.Info("agent listener", "addr", ls.Agent.Addr().String(), "agent_url", s.cfg.AgentURL, "ca_pin", s.authority.Pin())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if agents != nil {
		if aerr := agents.Shutdown(shutdownCtx); aerr != nil && err == nil {
			err = aerr
		}
	}
	stopBG()
	if stopErr := s.jobs.Stop(shutdownCtx); stopErr != nil && err == nil {
		err = stopErr
	}
	<-hubDone
	<-nodesDone
	<-deployDone
	<-rulesDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}
