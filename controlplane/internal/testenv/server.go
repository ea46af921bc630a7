package testenv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/secrets"
	"skypanel/controlplane/internal/server"
	"skypanel/controlplane/internal/store"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

// Env is a running control plane on a fresh database.
type Env struct {
	// URL is the control plane's base URL (http://127.0.0.1:PORT).
	URL   string
	Store *store.Store
	// Mail is the SMTP server the control plane sends to (nil unless WithMail).
	Mail   *Mailpit
	Config *config.Config
	HTTP   *http.Client
	// AgentURL is the agent listener's URL (https://127.0.0.1:PORT).
	AgentURL string
	Server   *server.Server
	stop     func(crashed bool)
}

// Option adjusts Start.
type Option func(*startOptions)

type startOptions struct {
	mail  bool
	host  string
	tweak []func(*config.Config)
}

// WithMail starts a mailpit SMTP server and points the control plane at it.
func WithMail() Option { return func(o *startOptions) { o.mail = true } }

// WithConfig changes the control plane's config before it starts.
func WithConfig(f func(*config.Config)) Option {
	return func(o *startOptions) { o.tweak = append(o.tweak, f) }
}

// WithHost listens on host instead of 127.0.0.1 (for nodes in network namespaces).
func WithHost(host string) Option { return func(o *startOptions) { o.host = host } }

// Start runs a control plane on a fresh database until the test ends.
func Start(t testing.TB, options ...Option) *Env {
	t.Helper()
	o := startOptions{host: "127.0.0.1"}
	for _, opt := range options {
		opt(&o)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, "0"))
	require.NoError(t, err)
	agentLn, err := net.Listen("tcp", net.JoinHostPort(o.host, "0"))
	require.NoError(t, err)
	cfg := config.Flags(newFlagSet())
	cfg.DatabaseURL = ownRole(t, DatabaseURL(t))
	cfg.Listen = ln.Addr().String()
	cfg.AgentListen = agentLn.Addr().String()
	cfg.MasterKeyFile = MasterKeyFile(t)
	cfg.LogLevel = "warn"
	if testing.Verbose() {
		cfg.LogLevel = "info"
	}
	env := &Env{Config: cfg, HTTP: &http.Client{Timeout: 60 * time.Second}}
	if o.mail {
		env.Mail = StartMailpit(t)
		cfg.Mail.Addr, cfg.Mail.TLS = env.Mail.SMTPAddr, "none"
	}
	for _, f := range o.tweak {
		f(cfg)
	}
	require.NoError(t, cfg.ValidateServe())
	env.URL, env.AgentURL = cfg.PublicURL, cfg.AgentURL
	env.boot(t, ln, agentLn)
	t.Cleanup(func() { env.Stop(t) })
	return env
}

// boot starts a server on the env's config and database.
func (e *Env) boot(t testing.TB, ln, agentLn net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Options{URL: e.Config.DatabaseURL})
	require.NoError(t, err)
	e.Store = st
	var logOut io.Writer = io.Discard
	if testing.Verbose() || os.Getenv("SKYPANEL_TEST_LOGS") != "" {
		logOut = os.Stderr
	}
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: e.Config.Level()}))
	srv, err := server.New(ctx, server.Options{Config: e.Config, Store: st, Logger: logger,
		// Cheap hashing: tests sign up many users; production costs are tested in package auth.
		PasswordParams: auth.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}})
	require.NoError(t, err)
	e.Server = srv
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, server.Listeners{Public: ln, Agent: agentLn}) }()
	e.stop = func(crashed bool) {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && !crashed {
				t.Errorf("control plane stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("control plane did not stop within 30s")
		}
		st.Close()
	}
	waitReady(t, e)
}

// Stop shuts the control plane down gracefully (a no-op when it is stopped).
func (e *Env) Stop(t testing.TB) {
	t.Helper()
	if e.stop != nil {
		e.stop(false)
		e.stop = nil
	}
}

// Restart stops the control plane and starts a new one on the same database, master key and
// addresses: what agents see when the control plane is redeployed or crashes and comes back.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	e.Stop(t)
	e.reboot(t)
}

// reboot starts a stopped control plane again on its addresses.
func (e *Env) reboot(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", e.Config.Listen)
	require.NoError(t, err)
	agentLn, err := net.Listen("tcp", e.Config.AgentListen)
	require.NoError(t, err)
	e.boot(t, ln, agentLn)
}

func waitReady(t testing.TB, env *Env) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(env.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// User is a signed-in test user.
type User struct {
	ID    uuid.UUID
	Email string
	// Token is an access token for the user.
	Token string
}

// NewUser creates a user with password "password123" and signs it in, directly in the store.
func (e *Env) NewUser(t testing.TB, email string) *User {
	t.Helper()
	ctx := context.Background()
	hash, err := auth.HashPassword("password123", auth.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	require.NoError(t, err)
	u, err := e.Store.CreateUser(ctx, email, strings.Split(email, "@")[0], hash, false)
	require.NoError(t, err)
	return &User{ID: u.ID, Email: u.Email, Token: e.SessionToken(t, u.ID)}
}

// SessionToken starts a session for a user and returns an access token for it.
func (e *Env) SessionToken(t testing.TB, userID uuid.UUID) string {
	t.Helper()
	ctx := context.Background()
	secret, hash := auth.NewToken(auth.KindAccess)
	err := e.Store.InTx(ctx, func(q *store.Queries) error {
		s, err := q.CreateSession(ctx, userID, "127.0.0.1", "testenv", time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		return q.InsertAccessToken(ctx, s.ID, hash, time.Now().Add(time.Hour))
	})
	require.NoError(t, err)
	return secret
}

// MakePlatformAdmin grants platform admin to a user.
func (e *Env) MakePlatformAdmin(t testing.TB, u *User) {
	t.Helper()
	_, err := e.Store.SetPlatformAdmin(context.Background(), u.ID, true)
	require.NoError(t, err)
}

// Client builds a Connect client for the env, sending token (if any) as the bearer.
func Client[T any](e *Env, ctor func(connect.HTTPClient, string, ...connect.ClientOption) T, token string, opts ...connect.ClientOption) T {
	if token != "" {
		opts = append(opts, connect.WithInterceptors(Bearer(token)))
	}
	return ctor(e.HTTP, e.URL, opts...)
}

// Bearer is a client interceptor that sends `Authorization: Bearer token`.
func Bearer(token string) connect.Interceptor { return bearer(token) }

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// NewOrg creates an organization owned by u, through the API, and returns its id.
func (e *Env) NewOrg(t testing.TB, owner *User, name string) uuid.UUID {
	t.Helper()
	c := Client(e, organizationv1connect.NewOrganizationServiceClient, owner.Token)
	resp, err := c.CreateOrganization(context.Background(), connect.NewRequest(&orgv1.CreateOrganizationRequest{Name: name}))
	require.NoError(t, err)
	return uuid.MustParse(resp.Msg.GetOrganization().GetId())
}

// MasterKeyFile writes a fresh master key file for the test and returns its path.
func MasterKeyFile(t testing.TB) string {
	t.Helper()
	line, err := secrets.GenerateKeyLine("test")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	return path
}
