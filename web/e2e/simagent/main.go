// Command simagent is a simulated node agent for the dashboard's browser tests: it enrolls
// with an enrollment token over the control plane's agent listener (checking the CA pin the
// way the real agent does), opens the command stream, acknowledges every command with the
// output docs/agents-contract.md describes (as if Docker had run it), and reports plausible
// host metrics and Docker state every second until it is killed.
//
//	go run ./web/e2e/simagent --agent-url https://127.0.0.1:8443 --token spen.<pin>.<secret>
//
// It prints "enrolled <node id>" once enrolled. Not for production: there is no Docker here.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

func main() {
	agentURL := flag.String("agent-url", "", "the control plane's agent URL (https://host:port)")
	token := flag.String("token", "", "enrollment token spen.<pin>.<secret>")
	hostname := flag.String("hostname", "", "hostname to report (default sim-<random>)")
	backfill := flag.Duration("backfill", 0, "first report samples dated over this past span (every 30 s), for charts with history")
	flag.Parse()
	if *agentURL == "" || *token == "" {
		fmt.Fprintln(os.Stderr, "usage: simagent --agent-url URL --token TOKEN")
		os.Exit(2)
	}
	if *hostname == "" {
		*hostname = fmt.Sprintf("sim-%04d", rand.IntN(10000))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *agentURL, *token, *hostname, *backfill); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "simagent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, agentURL, tokenText, hostname string, backfill time.Duration) error {
	tok, err := pki.ParseEnrollmentToken(tokenText)
	if err != nil {
		return err
	}
	u, err := url.Parse(agentURL)
	if err != nil {
		return err
	}
	serverName := u.Hostname()

	// Enroll: TLS trusted only through the token's CA pin.
	key, csr, err := pki.NewNodeKey(hostname)
	if err != nil {
		return err
	}
	pinned := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, tok.CAPin, serverName)
		},
	}
	enrollClient := agentv1connect.NewAgentServiceClient(h2Client(pinned), agentURL)
	res, err := enrollClient.Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{
		Token:  tokenText,
		CsrDer: csr,
		Facts: &agentv1.HostFacts{
			Hostname: hostname, Os: "Debian GNU/Linux 13 (trixie)", Kernel: "6.12.0-sim", Arch: "amd64",
			Cpus: 4, MemoryBytes: 8 << 30, DockerVersion: "28.5.2", AgentVersion: "sim",
			AdvertiseAddr: "10.0.0." + fmt.Sprint(10+rand.IntN(200)),
		},
	}))
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	nodeID := res.Msg.GetNodeId()
	role := res.Msg.GetRole()
	fmt.Println("enrolled", nodeID)

	// The session: mutual TLS with the new node certificate, the CA from the response.
	cert, err := pki.ParseCertificatePEM([]byte(res.Msg.GetCertificatePem()))
	if err != nil {
		return err
	}
	ca, err := pki.ParseCertificatePEM([]byte(res.Msg.GetCaPem()))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	mtls := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		RootCAs:    roots,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert,
		}},
	}
	api := agentv1connect.NewAgentServiceClient(h2Client(mtls), agentURL)

	sim := &node{id: nodeID, role: role, swarmState: "inactive"}
	go sim.reportLoop(ctx, api, backfill)
	for ctx.Err() == nil {
		if err := sim.session(ctx, api); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "simagent: session:", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return ctx.Err()
}

func h2Client(conf *tls.Config) *http.Client {
	return &http.Client{Transport: &http2.Transport{
		TLSClientConfig: conf,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// verifyPinned accepts a chain only if it holds a certificate with the token's pin and the
// leaf verifies against it for serverAuth (what the real agent checks).
func verifyPinned(chain []*x509.Certificate, pin, serverName string) error {
	var ca *x509.Certificate
	for _, c := range chain {
		if pki.Pin(c) == pin {
			ca = c
			break
		}
	}
	if ca == nil || len(chain) == 0 {
		return errors.New("control plane CA does not match the token's pin")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

type node struct {
	id   string
	role agentv1.NodeRole

	mu           sync.Mutex
	lastSeq      int64
	swarmNodeID  string
	swarmState   string
	availability string
}

// session follows the command stream and acknowledges each command.
func (n *node) session(ctx context.Context, api agentv1connect.AgentServiceClient) error {
	n.mu.Lock()
	after := n.lastSeq
	n.mu.Unlock()
	stream, err := api.Connect(ctx, connect.NewRequest(&agentv1.ConnectRequest{AfterSeq: after, AgentVersion: "sim"}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		cmd := stream.Msg().GetCommand()
		if cmd == nil {
			continue
		}
		n.mu.Lock()
		if cmd.GetSeq() <= n.lastSeq {
			n.mu.Unlock()
			continue
		}
		out := n.apply(cmd)
		n.lastSeq = cmd.GetSeq()
		n.mu.Unlock()
		fmt.Printf("command %d %T ok\n", cmd.GetSeq(), cmd.GetKind())
		if _, err := api.Ack(ctx, connect.NewRequest(&agentv1.AckRequest{Seq: cmd.GetSeq(), Ok: true, Output: out})); err != nil {
			return fmt.Errorf("ack %d: %w", cmd.GetSeq(), err)
		}
	}
	return stream.Err()
}

// apply pretends to run a command (n.mu held) and returns its output as JSON.
func (n *node) apply(cmd *agentv1.Command) string {
	enc := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	short := n.id
	if len(short) > 8 {
		short = short[:8]
	}
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_SwarmInit:
		n.swarmNodeID, n.swarmState, n.availability = "sim-"+short, "active", "active"
		return enc(map[string]string{"swarm_id": "sim", "swarm_node_id": n.swarmNodeID,
			"manager_join_token": "SWMTKN-sim-m", "worker_join_token": "SWMTKN-sim-w"})
	case *agentv1.Command_SwarmJoin:
		n.swarmNodeID, n.swarmState, n.availability = "sim-"+short, "active", "active"
		return enc(map[string]string{"swarm_node_id": n.swarmNodeID})
	case *agentv1.Command_SwarmLeave:
		n.swarmNodeID, n.swarmState = "", "inactive"
	case *agentv1.Command_NodeUpdate:
		if k.NodeUpdate.GetSwarmNodeId() == n.swarmNodeID && k.NodeUpdate.GetAvailability() != "" {
			n.availability = k.NodeUpdate.GetAvailability()
		}
	}
	return "{}"
}

// reportLoop first sends samples dated over the past backfill span, then a heartbeat every
// second, with slowly wandering metrics.
func (n *node) reportLoop(ctx context.Context, api agentv1connect.AgentServiceClient, backfill time.Duration) {
	var rx, tx int64
	memTotal := int64(8 << 30)
	report := func(at time.Time) {
		t := float64(at.Unix())
		rx += 40_000 + rand.Int64N(20_000)
		tx += 15_000 + rand.Int64N(10_000)
		n.mu.Lock()
		docker := &agentv1.DockerState{
			EngineVersion: "28.5.2", SwarmNodeId: n.swarmNodeID, SwarmState: n.swarmState, Role: n.role,
			Availability: n.availability, ContainersRunning: 3, ContainersTotal: 4, TasksRunning: 2,
			OverlayEncryption: true,
		}
		n.mu.Unlock()
		_, err := api.Report(ctx, connect.NewRequest(&agentv1.ReportRequest{
			SampledAt: timestamppb.New(at),
			Host: &agentv1.HostMetrics{
				CpuPercent:       30 + 18*math.Sin(t/420) + 6*math.Sin(t/97) + rand.Float64()*6,
				MemoryUsedBytes:  int64(float64(memTotal) * (0.45 + 0.08*math.Sin(t/900) + 0.02*rand.Float64())),
				MemoryTotalBytes: memTotal,
				DiskUsedBytes:    31<<30 + int64(t)%86400*4096, DiskTotalBytes: 80 << 30,
				NetRxBytes: rx, NetTxBytes: tx,
				Load1: 1 + 0.6*math.Sin(t/300) + 0.2*rand.Float64(), Load5: 0.9, Load15: 0.8,
			},
			Docker: docker,
		}))
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "simagent: report:", err)
		}
	}
	start := time.Now()
	for at := start.Add(-backfill); backfill > 0 && at.Before(start) && ctx.Err() == nil; at = at.Add(30 * time.Second) {
		// Each interval's traffic, so the rates stay plausible.
		rx += 29 * 50_000
		tx += 29 * 20_000
		report(at)
	}
	if backfill > 0 { // the traffic between the last backdated sample and now
		rx += 29 * 50_000
		tx += 29 * 20_000
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		report(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
