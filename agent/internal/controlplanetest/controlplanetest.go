// Package controlplanetest holds an in-process stand-in for the control plane's agent
// listener: a real TLS server with a throwaway platform CA, speaking the generated
// AgentService over HTTP/2, that records what agents send (acks, reports, workload reports,
// log batches), queues commands for them and sends ephemeral ones on their live streams.
// Agent tests use it so that they exercise real TLS, real Connect streams and real
// certificates; the control plane's own tests cover the real listener.
package controlplanetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"skypanel/agent/internal/identity"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/pki"
)

// Options shape a Server.
type Options struct {
	// OmitCAFromChain makes the server present only its leaf certificate.
	OmitCAFromChain bool
	// CertLifetime is the lifetime of issued node certificates (default 72 h).
	CertLifetime time.Duration
	// Keepalive is how often Connect sends a keepalive when idle; 0 sends none.
	Keepalive time.Duration
	// IgnoreAfterSeq makes Connect send the whole outbox, as if acks had been lost.
	IgnoreAfterSeq bool
	// ReportInterval is returned from Report (seconds; 0 leaves the agent's).
	ReportInterval int32
	// HoldPeers makes Report answer as the control plane does about peer lists: it holds the
	// lists of the last report that named them and echoes their digest (ForgetPeers drops
	// them, as a restart does). Without it Report never echoes a digest.
	HoldPeers bool
	// ReportKeepalives makes Report answer stream_keepalive while a Connect stream is open,
	// as the control plane does for reports that share the stream's connection.
	ReportKeepalives bool
	// OnAck, if set, runs when an Ack arrives, before it is recorded.
	OnAck func(*agentv1.AckRequest)
	// StopLogs, if set, decides PushLogs's answer (true: stop following) for each request,
	// after it is recorded. Server.StopLogs stops streams by id as well.
	StopLogs func(*agentv1.PushLogsRequest) bool
}

// Server is a fake agent listener.
type Server struct {
	t    testing.TB
	opts Options
	CA   *pki.CA
	URL  string
	http *httptest.Server

	mu        sync.Mutex
	token     pki.EnrollmentToken
	enrollErr error
	nodeID    string
	revoked   map[string]bool
	outbox    []*agentv1.Command
	acks      []*agentv1.AckRequest
	reports   []*agentv1.ReportRequest
	peers     uint64 // digest of the peer lists held (HoldPeers)
	workloads []*agentv1.ReportWorkloadsRequest
	logs      []*agentv1.PushLogsRequest
	stopLogs  map[string]bool
	connects  []*agentv1.ConnectRequest
	renewals  int
	certs     []*x509.Certificate
	changed   chan struct{} // closed and replaced on every change
	streams   map[int]*liveStream
	nextID    int
}

// liveStream is one open Connect stream.
type liveStream struct {
	cancel context.CancelFunc
	// ephemeral carries commands sent outside the outbox (LogsFollow), seq 0.
	ephemeral chan *agentv1.Command
}

// New starts a Server; it stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.CertLifetime == 0 {
		opts.CertLifetime = 72 * time.Hour
	}
	ca, err := pki.NewCA("test platform CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		t: t, opts: opts, CA: ca,
		token:    pki.NewEnrollmentToken(ca.Pin()),
		nodeID:   "node-1",
		revoked:  map[string]bool{},
		changed:  make(chan struct{}),
		streams:  map[int]*liveStream{},
		stopLogs: map[string]bool{},
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.SignServer(&key.PublicKey, []string{"127.0.0.1", "localhost"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{leaf.Raw}
	if !opts.OmitCAFromChain {
		chain = append(chain, ca.Cert.Raw)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Cert)

	mux := http.NewServeMux()
	mux.Handle(agentv1connect.NewAgentServiceHandler(s))
	s.http = httptest.NewUnstartedServer(s.authenticate(mux))
	s.http.EnableHTTP2 = true
	s.http.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key, Leaf: leaf}},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    clientCAs,
	}
	s.http.StartTLS()
	s.URL = s.http.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() {
	s.DropStreams()
	s.http.CloseClientConnections()
	s.http.Close()
}

// Token returns a valid enrollment token.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token.String()
}

// RefuseEnrollment makes Enroll fail with err (a *connect.Error to control the code).
func (s *Server) RefuseEnrollment(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enrollErr = err
}

// Revoke refuses the node from now on and closes its streams.
func (s *Server) Revoke(nodeID string) {
	s.mu.Lock()
	s.revoked[nodeID] = true
	s.mu.Unlock()
	s.DropStreams()
}

// Queue appends commands to the outbox, numbering them.
func (s *Server) Queue(cmds ...*agentv1.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cmds {
		c.Seq = int64(len(s.outbox) + 1)
		s.outbox = append(s.outbox, c)
	}
	s.notifyLocked()
}

// DropStreams ends every open Connect stream (like a control-plane restart).
func (s *Server) DropStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ls := range s.streams {
		ls.cancel()
		delete(s.streams, id)
	}
}

// SendEphemeral sends cmd with seq 0 on every open Connect stream, outside the outbox, as
// the control plane sends LogsFollow: it is not stored and not resent after a reconnect.
// It returns how many streams it went to.
func (s *Server) SendEphemeral(cmd *agentv1.Command) int {
	cmd.Seq = 0
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ls := range s.streams {
		select {
		case ls.ephemeral <- cmd:
			n++
		default:
		}
	}
	return n
}

// OpenStreams returns how many Connect streams are open.
func (s *Server) OpenStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// StopLogs makes PushLogs answer stop for streamID from now on (the reader went away).
func (s *Server) StopLogs(streamID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLogs[streamID] = true
}

// Workloads returns the workload reports received, in order.
func (s *Server) Workloads() []*agentv1.ReportWorkloadsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*agentv1.ReportWorkloadsRequest(nil), s.workloads...)
}

// Logs returns the PushLogs requests received for streamID (every stream when empty), in
// order.
func (s *Server) Logs(streamID string) []*agentv1.PushLogsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*agentv1.PushLogsRequest
	for _, r := range s.logs {
		if streamID == "" || r.GetStreamId() == streamID {
			out = append(out, r)
		}
	}
	return out
}

// Acks returns the acknowledgements received, in order.
func (s *Server) Acks() []*agentv1.AckRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*agentv1.AckRequest(nil), s.acks...)
}

// Connects returns the Connect requests received, in order.
func (s *Server) Connects() []*agentv1.ConnectRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*agentv1.ConnectRequest(nil), s.connects...)
}

// Reports returns the reports received, in order.
func (s *Server) Reports() []*agentv1.ReportRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*agentv1.ReportRequest(nil), s.reports...)
}

// Renewals returns how many certificates Renew issued.
func (s *Server) Renewals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewals
}

// Wait polls cond until it holds or the deadline passes.
func (s *Server) Wait(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

type nodeKey struct{}

// authenticate plays the real listener's middleware: every RPC but Enroll needs a verified
// client certificate naming a node that is not revoked.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == agentv1connect.AgentServiceEnrollProcedure {
			next.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeError(w, r, connect.NewError(connect.CodeUnauthenticated, errors.New("a node certificate is required")))
			return
		}
		leaf := r.TLS.VerifiedChains[0][0]
		id, err := pki.NodeID(leaf)
		if err != nil {
			writeError(w, r, connect.NewError(connect.CodeUnauthenticated, err))
			return
		}
		s.mu.Lock()
		revoked := s.revoked[id]
		s.certs = append(s.certs, leaf)
		s.mu.Unlock()
		if revoked {
			writeError(w, r, connect.NewError(connect.CodePermissionDenied, errors.New("this node was removed")))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, id)))
	})
}

func writeError(w http.ResponseWriter, r *http.Request, err *connect.Error) {
	if err := connect.NewErrorWriter().Write(w, r, err); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
	}
}

// PresentedCertificates returns the client certificates seen on authenticated requests.
func (s *Server) PresentedCertificates() []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*x509.Certificate(nil), s.certs...)
}

// Enroll implements AgentService.
func (s *Server) Enroll(_ context.Context, req *connect.Request[agentv1.EnrollRequest]) (*connect.Response[agentv1.EnrollResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enrollErr != nil {
		return nil, s.enrollErr
	}
	if req.Msg.Token != s.token.String() {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("the enrollment token is not valid"))
	}
	if req.Msg.Facts.GetAdvertiseAddr() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("facts.advertise_addr: required"))
	}
	cert, err := s.CA.SignNode(req.Msg.CsrDer, pki.NodeCertificate{NodeID: s.nodeID, Lifetime: s.opts.CertLifetime}, time.Now())
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	s.enrollErr = connect.NewError(connect.CodeUnauthenticated, errors.New("the enrollment token was already used"))
	s.notifyLocked()
	return connect.NewResponse(&agentv1.EnrollResponse{
		NodeId:         s.nodeID,
		ClusterId:      "cluster-1",
		Role:           agentv1.NodeRole_NODE_ROLE_MANAGER,
		Labels:         map[string]string{"zone": "a"},
		CertificatePem: string(pki.CertPEM(cert)),
		CaPem:          string(s.CA.CertPEM()),
	}), nil
}

// Renew implements AgentService.
func (s *Server) Renew(ctx context.Context, req *connect.Request[agentv1.RenewRequest]) (*connect.Response[agentv1.RenewResponse], error) {
	id, _ := ctx.Value(nodeKey{}).(string)
	cert, err := s.CA.SignNode(req.Msg.CsrDer, pki.NodeCertificate{NodeID: id, Lifetime: s.opts.CertLifetime}, time.Now())
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	s.mu.Lock()
	s.renewals++
	s.notifyLocked()
	s.mu.Unlock()
	return connect.NewResponse(&agentv1.RenewResponse{CertificatePem: string(pki.CertPEM(cert))}), nil
}

// Connect implements AgentService.
func (s *Server) Connect(ctx context.Context, req *connect.Request[agentv1.ConnectRequest], stream *connect.ServerStream[agentv1.ConnectResponse]) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.connects = append(s.connects, req.Msg)
	id := s.nextID
	s.nextID++
	ls := &liveStream{cancel: cancel, ephemeral: make(chan *agentv1.Command, 64)}
	s.streams[id] = ls
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, id)
		s.mu.Unlock()
	}()

	sent := 0
	if !s.opts.IgnoreAfterSeq {
		sent = int(req.Msg.AfterSeq)
	}
	var keepalive <-chan time.Time
	if s.opts.Keepalive > 0 {
		tk := time.NewTicker(s.opts.Keepalive)
		defer tk.Stop()
		keepalive = tk.C
	}
	for {
		s.mu.Lock()
		pending := append([]*agentv1.Command(nil), s.outbox[min(sent, len(s.outbox)):]...)
		ch := s.changed
		s.mu.Unlock()
		for _, c := range pending {
			if err := stream.Send(&agentv1.ConnectResponse{Command: c}); err != nil {
				return err
			}
			sent++
		}
		select {
		case <-ctx.Done():
			return connect.NewError(connect.CodeUnavailable, errors.New("stream closed by the server"))
		case <-ch:
		case c := <-ls.ephemeral:
			if err := stream.Send(&agentv1.ConnectResponse{Command: c}); err != nil {
				return err
			}
		case <-keepalive:
			if err := stream.Send(&agentv1.ConnectResponse{}); err != nil {
				return err
			}
		}
	}
}

// Ack implements AgentService.
func (s *Server) Ack(_ context.Context, req *connect.Request[agentv1.AckRequest]) (*connect.Response[agentv1.AckResponse], error) {
	if s.opts.OnAck != nil {
		s.opts.OnAck(req.Msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, req.Msg)
	s.notifyLocked()
	return connect.NewResponse(&agentv1.AckResponse{}), nil
}

// Report implements AgentService.
func (s *Server) Report(_ context.Context, req *connect.Request[agentv1.ReportRequest]) (*connect.Response[agentv1.ReportResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, req.Msg)
	s.notifyLocked()
	resp := &agentv1.ReportResponse{IntervalSeconds: s.opts.ReportInterval,
		StreamKeepalive: s.opts.ReportKeepalives && len(s.streams) > 0}
	if s.opts.HoldPeers {
		r := req.Msg
		switch {
		case len(r.GetReachablePeers()) > 0 || len(r.GetUnreachablePeers()) > 0 || r.GetPeersDigest() == 0:
			s.peers = r.GetPeersDigest()
		case r.GetPeersDigest() != s.peers:
			s.peers = 0
		}
		resp.PeersDigest = s.peers
	}
	return connect.NewResponse(resp), nil
}

// ForgetPeers drops the peer lists held (HoldPeers), as a restarted control plane would.
func (s *Server) ForgetPeers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = 0
}

// ReportWorkloads implements AgentService.
func (s *Server) ReportWorkloads(_ context.Context, req *connect.Request[agentv1.ReportWorkloadsRequest]) (*connect.Response[agentv1.ReportWorkloadsResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workloads = append(s.workloads, req.Msg)
	s.notifyLocked()
	return connect.NewResponse(&agentv1.ReportWorkloadsResponse{}), nil
}

// PushLogs implements AgentService.
func (s *Server) PushLogs(_ context.Context, req *connect.Request[agentv1.PushLogsRequest]) (*connect.Response[agentv1.PushLogsResponse], error) {
	s.mu.Lock()
	s.logs = append(s.logs, req.Msg)
	stop := s.stopLogs[req.Msg.GetStreamId()]
	s.notifyLocked()
	s.mu.Unlock()
	if s.opts.StopLogs != nil && s.opts.StopLogs(req.Msg) {
		stop = true
	}
	return connect.NewResponse(&agentv1.PushLogsResponse{Stop: stop}), nil
}

// NewIdentity writes an enrolled identity for nodeID into a fresh data directory, as
// enrollment would, and loads it.
func (s *Server) NewIdentity(t testing.TB, nodeID string, lifetime time.Duration) *identity.Identity {
	t.Helper()
	dir, err := identity.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, csr, err := pki.NewNodeKey("test-node")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := s.CA.SignNode(csr, pki.NodeCertificate{NodeID: nodeID, Lifetime: lifetime}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		dir.WriteKey(key),
		dir.WriteCA(s.CA.CertPEM()),
		dir.WriteCertificate(pki.CertPEM(cert)),
		dir.SaveState(identity.State{NodeID: nodeID, ClusterID: "cluster-1", AgentURL: s.URL, AdvertiseAddr: "127.0.0.1"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	id, err := dir.Load()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
