package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/e2e"
	"skypanel/controlplane/internal/testenv"
	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
	planv1 "skypanel/shared/gen/go/skypanel/plan/v1"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
)

// BenchmarkDeployOverhead is issue 5's benchmark (a): on the three-node swarm, the time from
// CreateApp to the first replica answering through the edge, against a raw
// `docker service create` of the same image (dnsrr, on an overlay network) to a running task,
// alternating the two for nine rounds. It prints the medians and their ratio (goal: at most
// 1.2). Run by `make bench`; it asserts nothing about time.
func BenchmarkDeployOverhead(b *testing.B) {
	const rounds = 9
	nodes := e2e.Up(b, 3)
	ctx := b.Context()
	c := formCluster(b, nodes, func(string) {}, func(cfg *config.Config) {
		cfg.NodeTTL, cfg.NodeGrace = 30*time.Second, 15*time.Second
	})
	importImage(b, nodes, whoamiBinary(b))
	plans := testenv.Client(c.env, planv1connect.NewPlanServiceClient, c.admin.Token)
	plan, err := plans.CreatePlan(ctx, connect.NewRequest(&planv1.CreatePlanRequest{Plan: &planv1.PlanFields{
		Name: "tiny", CpuMillis: 100, MemoryMib: 64, PricePerHour: 1, Currency: "USD", MaxReplicas: 3, MaxApps: 100}}))
	require.NoError(b, err)
	tn := newTenant(b, c.env, "bench@example.com", "Bench", plan.Msg.GetPlan().GetId())
	edge := &edgeClient{addr: nodes.Addr(1)}
	_, err = nodes.Docker(ctx, 1, "network", "create", "--driver", "overlay", "--attachable", "rawnet")
	require.NoError(b, err)

	// One app first, so that the organization's network and the edge container exist for
	// both sides (a raw service needs its network made beforehand too).
	warm, dep := tn.create(b, "warm", benchSpec())
	tn.waitDeployment(b, dep, appv1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
	eventually(b, 60*time.Second, "the warm-up app answering through the edge", func() bool {
		_, code, err := edge.get(warm.GetDefaultHostname())
		return err == nil && code == http.StatusOK
	})

	var raw, seen, platform []time.Duration
	b.ResetTimer()
	for i := range rounds {
		r, s := rawDeploy(b, nodes, fmt.Sprintf("raw%d", i))
		raw, seen = append(raw, r), append(seen, s)
		platform = append(platform, platformDeploy(b, tn, edge, fmt.Sprintf("app%d", i)))
	}
	b.StopTimer()
	mr, ms, mp := median(raw), median(seen), median(platform)
	fmt.Printf("\n| round | raw `docker service create` → running (Swarm's time) | (seen by `docker service ps`) | CreateApp → answering through the edge |\n|---:|---:|---:|---:|\n")
	for i := range rounds {
		fmt.Printf("| %d | %s | %s | %s |\n", i+1, raw[i].Round(time.Millisecond), seen[i].Round(time.Millisecond), platform[i].Round(time.Millisecond))
	}
	fmt.Printf("| **median** | **%s** | %s | **%s** |\n\nratio (platform / raw at Swarm's time): **%.2f** (goal: at most 1.2); against raw as seen: %.2f\n",
		mr.Round(time.Millisecond), ms.Round(time.Millisecond), mp.Round(time.Millisecond), float64(mp)/float64(mr), float64(mp)/float64(ms))
	b.ReportMetric(float64(mp)/float64(mr), "ratio")
}

func benchSpec() *appv1.AppSpec {
	return &appv1.AppSpec{Image: appImage, Port: 8080, Replicas: 1, Command: []string{"/whoami", "app"},
		Env: []*appv1.EnvVar{{Name: "RELEASE", Value: "bench"}}}
}

// rawDeploy creates a service as an operator would by hand and times it to the moment Swarm
// saw its task running, and to the moment `docker service ps` showed it (polled every 20 ms,
// each poll a CLI run: later by tens of milliseconds).
func rawDeploy(b *testing.B, nodes *e2e.Nodes, name string) (raw, seen time.Duration) {
	ctx := b.Context()
	start := time.Now()
	out, err := nodes.Docker(ctx, 1, "service", "create", "--detach", "--name", name, "--endpoint-mode", "dnsrr",
		"--network", "rawnet", "--env", "PORT=8080", "--env", "RELEASE=raw", "--limit-cpu", "0.1",
		"--limit-memory", "64m", appImage, "app")
	require.NoError(b, err, out)
	var task string
	for {
		out, err := nodes.Docker(ctx, 1, "service", "ps", name, "--filter", "desired-state=running", "--format", "{{.ID}} {{.CurrentState}}")
		if f := strings.Fields(out); err == nil && len(f) >= 2 && f[1] == "Running" {
			task = f[0]
			break
		}
		require.Less(b, time.Since(start), 2*time.Minute, "raw service %s not running: %s", name, out)
		time.Sleep(20 * time.Millisecond)
	}
	seen = time.Since(start)
	// The nodes share this machine's clock.
	out, err = nodes.Docker(ctx, 1, "inspect", task, "--format", "{{json .Status.Timestamp}}")
	require.NoError(b, err, out)
	var running time.Time
	require.NoError(b, json.Unmarshal([]byte(strings.TrimSpace(out)), &running), out)
	_, err = nodes.Docker(context.WithoutCancel(ctx), 1, "service", "rm", name)
	require.NoError(b, err)
	return running.Sub(start), seen
}

// platformDeploy creates an app and times it to its first answer through the edge.
func platformDeploy(b *testing.B, tn *tenant, edge *edgeClient, name string) time.Duration {
	start := time.Now()
	app, _ := tn.create(b, name, benchSpec())
	host := app.GetDefaultHostname()
	for {
		body, code, err := edge.get(host)
		if err == nil && code == http.StatusOK && strings.HasPrefix(body, "release=bench") {
			break
		}
		require.Less(b, time.Since(start), 2*time.Minute, "app %s not answering: %d %v", name, code, err)
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	_, err := tn.apps.DeleteApp(b.Context(), connect.NewRequest(&appv1.DeleteAppRequest{OrganizationId: tn.org, AppId: app.GetId()}))
	require.NoError(b, err)
	return took
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
