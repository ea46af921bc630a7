package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"skypanel/controlplane/internal/benchcli"
	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
	clusterv1 "skypanel/shared/gen/go/skypanel/cluster/v1"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
)

// bins are the binaries the benchmark runs.
type bins struct {
	controlPlane string
	agent        string
}

// binaries returns the binaries in dir, or builds them into work when dir is empty.
func binaries(ctx context.Context, dir, work string, stderr io.Writer) (bins, error) {
	if dir != "" {
		b := bins{controlPlane: filepath.Join(dir, "skypanel-controlplane"), agent: filepath.Join(dir, "skypanel-agent")}
		for _, p := range []string{b.controlPlane, b.agent} {
			if _, err := os.Stat(p); err != nil {
				return b, fmt.Errorf("binaries: %w (run `make build`)", err)
			}
		}
		return b, nil
	}
	out := filepath.Join(work, "bin")
	fmt.Fprintln(stderr, "building skypanel-controlplane and skypanel-agent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+"/", "./controlplane/cmd/skypanel-controlplane", "./agent/cmd/skypanel-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return bins{}, fmt.Errorf("binaries: go build (from the repository root): %w", err)
	}
	return bins{controlPlane: filepath.Join(out, "skypanel-controlplane"), agent: filepath.Join(out, "skypanel-agent")}, nil
}

// controlPlane is a skypanel-controlplane process on a freshly wiped database.
type controlPlane struct {
	cmd      *exec.Cmd
	exited   chan error
	url      string // public listener
	agentURL string
	token    string // the admin's access token
	cluster  clusterv1connect.ClusterServiceClient
	logPath  string
	// postmaster is the Postgres server's main process (0 when not on this machine).
	postmaster int
}

const (
	benchAdminEmail    = "bench-admin@skypanel.localhost"
	benchAdminPassword = "bench-admin-password"
)

// startControlPlane wipes the database, creates an admin, starts the control plane with its
// logs in work/NAME.log and waits for it to be ready.
func startControlPlane(ctx context.Context, cfg Config, b bins, work, name string) (*controlPlane, error) {
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL})
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	_, err = st.MigrateDown(ctx, 0)
	if err == nil {
		_, err = st.MigrateUp(ctx)
	}
	postmaster := 0 // the Postgres server's CPU is measured too
	if err == nil {
		postmaster = benchcli.PostgresServer(ctx, st.Pool())
	}
	st.Close()
	if err != nil {
		return nil, fmt.Errorf("start control plane: reset the database: %w", err)
	}

	keyFile := filepath.Join(work, "master.key")
	env := append(os.Environ(), "SKYPANEL_DATABASE_URL="+cfg.DatabaseURL, "SKYPANEL_MASTER_KEY_FILE="+keyFile)
	if _, err := os.Stat(keyFile); err != nil {
		if out, err := exec.CommandContext(ctx, b.controlPlane, "master-key", "generate", "--out", keyFile).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("start control plane: master key: %w\n%s", err, out)
		}
	}
	admin := exec.CommandContext(ctx, b.controlPlane, "admin", "create", "--email", benchAdminEmail, "--password", benchAdminPassword)
	admin.Env = env
	if out, err := admin.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start control plane: admin create: %w\n%s", err, out)
	}

	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	agentListen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{url: "http://" + listen, agentURL: "https://" + agentListen, exited: make(chan error, 1),
		logPath: filepath.Join(work, name+".log"), postmaster: postmaster}
	logf, err := os.Create(cp.logPath)
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	defer logf.Close()
	// Not CommandContext: stop sends SIGTERM and waits, so the database is left tidy.
	cp.cmd = exec.Command(b.controlPlane, "serve")
	cp.cmd.Env = append(env, "SKYPANEL_LISTEN="+listen, "SKYPANEL_AGENT_LISTEN="+agentListen,
		"SKYPANEL_LOG_LEVEL="+cfg.ServerLogLevel, "SKYPANEL_REPORT_INTERVAL="+cfg.Interval.String(),
		"SKYPANEL_DOWNLOADS_DIR="+work)
	if cfg.DBMaxConns > 0 {
		cp.cmd.Env = append(cp.cmd.Env, fmt.Sprintf("SKYPANEL_DB_MAX_CONNS=%d", cfg.DBMaxConns))
	}
	if cfg.MemoryLimit != "" {
		cp.cmd.Env = append(cp.cmd.Env, "GOMEMLIMIT="+cfg.MemoryLimit)
	}
	cp.cmd.Stdout, cp.cmd.Stderr = logf, logf
	if err := cp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	go func() { cp.exited <- cp.cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(cp.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-cp.exited:
			return nil, fmt.Errorf("start control plane: it exited (%v); see %s", err, cp.logPath)
		case <-ctx.Done():
			cp.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cp.stop()
			return nil, fmt.Errorf("start control plane: not ready within 60s; see %s", cp.logPath)
		}
	}

	auth := authv1connect.NewAuthServiceClient(http.DefaultClient, cp.url)
	login, err := auth.LogIn(ctx, connect.NewRequest(&authv1.LogInRequest{Email: benchAdminEmail, Password: benchAdminPassword}))
	if err != nil {
		cp.stop()
		return nil, fmt.Errorf("start control plane: log in: %w", err)
	}
	cp.token = login.Msg.GetTokens().GetAccessToken()
	cp.cluster = clusterv1connect.NewClusterServiceClient(http.DefaultClient, cp.url,
		connect.WithInterceptors(bearer(cp.token)))
	return cp, nil
}

func (cp *controlPlane) pid() int { return cp.cmd.Process.Pid }

// stop sends SIGTERM and waits for the process (SIGKILL after 30 s).
func (cp *controlPlane) stop() {
	if cp.cmd.Process == nil {
		return
	}
	cp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cp.exited:
	case <-time.After(30 * time.Second):
		cp.cmd.Process.Kill()
		<-cp.exited
	}
}

// createCluster creates a cluster through the API.
func (cp *controlPlane) createCluster(ctx context.Context, name string) (string, error) {
	resp, err := cp.cluster.CreateCluster(ctx, connect.NewRequest(&clusterv1.CreateClusterRequest{Name: name}))
	if err != nil {
		return "", fmt.Errorf("create cluster %s: %w", name, err)
	}
	return resp.Msg.GetCluster().GetId(), nil
}

// maxTokenUses is the API's cap on an enrollment token's usage limit.
const maxTokenUses = 1000

// createToken creates a worker enrollment token for uses nodes through the API.
func (cp *controlPlane) createToken(ctx context.Context, clusterID string, uses int) (string, error) {
	resp, err := cp.cluster.CreateEnrollmentToken(ctx, connect.NewRequest(&clusterv1.CreateEnrollmentTokenRequest{
		ClusterId: clusterID, Role: agentv1.NodeRole_NODE_ROLE_WORKER, UsageLimit: int32(uses),
		Description: "skypanel-agentbench",
	}))
	if err != nil {
		return "", fmt.Errorf("create enrollment token: %w", err)
	}
	return resp.Msg.GetSecret(), nil
}

// bearer authenticates every call with an access token.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// freeAddr is a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
