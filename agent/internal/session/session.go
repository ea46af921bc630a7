// Package session holds the agent's command session with the control plane: it dials out,
// opens the Connect stream from the last acknowledged sequence, runs commands strictly in
// sequence order through an Executor, records each outcome durably before acknowledging it,
// and reconnects with jittered backoff when the stream dies or goes quiet. Ephemeral
// commands (LogsFollow, sent with seq 0) bypass the sequence: they start a log follow that
// pushes lines with PushLogs and are never acknowledged.
package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"skypanel/agent/internal/backoff"
	"skypanel/agent/internal/identity"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

// Defaults from docs/agents-contract.md.
const (
	DefaultWatchdog       = 45 * time.Second
	DefaultResetAfter     = 60 * time.Second
	DefaultCommandTimeout = 10 * time.Minute
	maxErrorLen           = 4000
	maxOutputLen          = 65536
)

// DefaultBackoff is the reconnect backoff: full jitter, base 1 s, cap 30 s.
var DefaultBackoff = backoff.Policy{Base: time.Second, Cap: 30 * time.Second}

// Executor runs one command and returns its output as JSON.
type Executor interface {
	Execute(ctx context.Context, cmd *agentv1.Command) (output string, err error)
}

// AckStore keeps the last acknowledgement durably (identity.Identity is one).
type AckStore interface {
	LastAck() (int64, *identity.Ack, error)
	SaveAck(identity.Ack) error
}

// ClientSource returns the AgentService client to call now (link.Client is one).
type ClientSource interface {
	API() agentv1connect.AgentServiceClient
}

// Options configure a Session.
type Options struct {
	Client   ClientSource
	Acks     AckStore
	Executor Executor
	// AgentVersion is sent with Connect.
	AgentVersion string
	// Watchdog drops a stream that brought no message, keepalives included, for this long
	// (default 45 s).
	Watchdog time.Duration
	// Backoff spaces reconnects (default DefaultBackoff).
	Backoff backoff.Policy
	// ResetAfter resets the backoff once a stream lasted this long (default 60 s).
	ResetAfter time.Duration
	// CommandTimeout bounds one command's execution (default 10 min).
	CommandTimeout time.Duration
	// CertificateExpiry, if set, returns when the client certificate expires; a stream is
	// reopened (without backoff) a minute before the certificate it was opened with expires.
	CertificateExpiry func() time.Time
	// Logs reads services' logs for LogsFollow; nil answers every LogsFollow with an error.
	Logs LogSource
	// MaxFollows bounds the log streams followed at once (default 32); more are refused.
	MaxFollows int
	// Logger receives the session's log; nil discards.
	Logger *slog.Logger
	// Metrics registers the session's metrics; nil registers none.
	Metrics prometheus.Registerer
}

// Session is the command session.
type Session struct {
	opts Options
	log  *slog.Logger

	connected atomic.Bool
	// watchdog is the open stream's watchdog timer (nil between streams), which Keepalive
	// resets too.
	watchdog atomic.Pointer[time.Timer]
	// reack is set when the control plane may not have the last acknowledgement: at start
	// and after a failed Ack. The next stream then repeats it first.
	reack atomic.Bool

	mConnected prometheus.Gauge
	mConnects  *prometheus.CounterVec
	mCommands  *prometheus.CounterVec
	mLastAcked prometheus.Gauge
	mFollows   prometheus.Gauge

	follows follows
}

// New returns a Session.
func New(opts Options) (*Session, error) {
	if opts.Client == nil || opts.Acks == nil || opts.Executor == nil {
		return nil, errors.New("session: client, ack store and executor are required")
	}
	if opts.Watchdog == 0 {
		opts.Watchdog = DefaultWatchdog
	}
	if opts.Backoff.Base == 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.ResetAfter == 0 {
		opts.ResetAfter = DefaultResetAfter
	}
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = DefaultCommandTimeout
	}
	if opts.MaxFollows == 0 {
		opts.MaxFollows = DefaultMaxFollows
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		opts: opts,
		log:  logger,
		mConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skypanel_agent_session_connected", Help: "1 while the command stream to the control plane is open."}),
		mConnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_agent_session_connects_total", Help: "Command stream attempts by result (ok, refused, error)."}, []string{"result"}),
		mCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skypanel_agent_commands_total", Help: "Commands by result (ok, error, skipped)."}, []string{"result"}),
		mLastAcked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skypanel_agent_last_acked_seq", Help: "The highest command sequence acknowledged."}),
		mFollows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skypanel_agent_log_follows", Help: "Log streams being followed for the control plane."}),
		follows: follows{active: map[string]bool{}},
	}
	if opts.Metrics != nil {
		for _, c := range []prometheus.Collector{s.mConnected, s.mConnects, s.mCommands, s.mLastAcked, s.mFollows} {
			if err := opts.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("session: register metrics: %w", err)
			}
		}
	}
	s.reack.Store(true)
	return s, nil
}

// Connected reports whether the command stream is open.
func (s *Session) Connected() bool { return s.connected.Load() }

// Keepalive counts as a message on the open stream: the control plane answered a report over
// the stream's own connection and said so (ReportResponse.stream_keepalive), in place of the
// keepalive it would otherwise send on the stream.
func (s *Session) Keepalive() {
	if t := s.watchdog.Load(); t != nil {
		t.Reset(s.opts.Watchdog)
	}
}

var (
	errWatchdog    = errors.New("no message from the control plane within the watchdog period")
	errCertRenewed = errors.New("reopening the stream before its certificate expires")
	errStreamEnded = errors.New("the control plane ended the stream")
)

// Run keeps the session up until ctx ends, and returns once its log follows stopped too.
func (s *Session) Run(ctx context.Context) error {
	defer s.follows.wg.Wait()
	attempt := 0
	for {
		start := time.Now()
		err := s.stream(ctx)
		s.connected.Store(false)
		s.mConnected.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		delay, retry := s.retryDelay(err, time.Since(start), &attempt)
		switch retry {
		case retryNow:
			s.log.Info("reopening the command stream with the renewed certificate")
			continue
		case retryRefused:
			s.mConnects.WithLabelValues("refused").Inc()
			s.log.Error("the control plane refuses this node: its certificate was revoked or the node was removed; "+
				"retrying slowly, re-enroll the node if this persists",
				"error", err, "retry_in", delay.String())
		default:
			s.mConnects.WithLabelValues("error").Inc()
			s.log.Warn("command stream lost; reconnecting", "error", err, "attempt", attempt, "retry_in", delay.Round(time.Millisecond).String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

type retryKind int

const (
	retryBackoff retryKind = iota
	retryNow
	retryRefused
)

// retryDelay decides how long to wait after a stream that lasted lasted ended with err.
// attempt counts consecutive failures; a stream that lasted ResetAfter resets it.
func (s *Session) retryDelay(err error, lasted time.Duration, attempt *int) (time.Duration, retryKind) {
	if lasted >= s.opts.ResetAfter {
		*attempt = 0
	}
	switch {
	case errors.Is(err, errCertRenewed):
		return 0, retryNow
	case Permanent(err):
		return s.opts.Backoff.Cap, retryRefused
	}
	d := s.opts.Backoff.Delay(*attempt)
	*attempt++
	return d, retryBackoff
}

// Permanent reports whether err means the control plane refuses this node itself (a revoked
// certificate, a removed node), as opposed to a transient failure.
func Permanent(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return true
	}
	// A certificate refused during the TLS handshake (expired, or not from the CA).
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "remote error: tls: ")
}

// stream runs one Connect stream until it fails.
func (s *Session) stream(ctx context.Context) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	last, lastAck, err := s.opts.Acks.LastAck()
	if err != nil {
		return fmt.Errorf("read last acknowledged sequence: %w", err)
	}
	var expires time.Time
	if s.opts.CertificateExpiry != nil {
		expires = s.opts.CertificateExpiry()
	}
	// The watchdog runs from the call on: the control plane answers with queued commands or
	// a keepalive well within it, and Connect itself may wait for the response headers.
	watchdog := time.AfterFunc(s.opts.Watchdog, func() { cancel(errWatchdog) })
	defer watchdog.Stop()
	s.watchdog.Store(watchdog)
	defer s.watchdog.CompareAndSwap(watchdog, nil)

	api := s.opts.Client.API()
	s.log.Debug("opening the command stream", "after_seq", last)
	stream, err := api.Connect(sctx, connect.NewRequest(&agentv1.ConnectRequest{AfterSeq: last, AgentVersion: s.opts.AgentVersion}))
	if err != nil {
		if cause := context.Cause(sctx); cause != nil && sctx.Err() != nil {
			return cause
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer stream.Close()
	if until := time.Until(expires.Add(-time.Minute)); !expires.IsZero() && until > 0 {
		// Not armed for a certificate that is about to expire anyway (renewal is failing):
		// reopening at once would only spin.
		t := time.AfterFunc(until, func() { cancel(errCertRenewed) })
		defer t.Stop()
	}

	q := newQueue()
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		first := true
		for stream.Receive() {
			watchdog.Reset(s.opts.Watchdog)
			if first {
				// The first message (a command or a keepalive) proves the control plane
				// accepted the stream; a refusal would have come as an error instead.
				first = false
				s.connected.Store(true)
				s.mConnected.Set(1)
				s.mConnects.WithLabelValues("ok").Inc()
				s.log.Info("command stream open", "after_seq", last)
			}
			if cmd := stream.Msg().GetCommand(); cmd != nil {
				if cmd.GetSeq() == 0 {
					s.ephemeral(ctx, cmd) // not sequenced: never queued, never acknowledged
					continue
				}
				q.push(cmd)
			}
		}
		if err := stream.Err(); err != nil {
			cancel(fmt.Errorf("command stream: %w", err))
		} else {
			cancel(errStreamEnded)
		}
	}()
	defer func() { cancel(nil); <-recvDone }()

	if s.reack.Load() && lastAck != nil {
		// The control plane may have missed the last acknowledgement (with its output): repeat it.
		if err := s.ack(ctx, *lastAck); err != nil {
			s.log.Debug("repeat the last acknowledgement", "seq", lastAck.Seq, "error", err)
		}
	}
	reackedThisStream := false
	for {
		select {
		case <-sctx.Done():
			return context.Cause(sctx)
		case <-q.ready:
		}
		for {
			cmd := q.pop()
			if cmd == nil {
				break
			}
			if sctx.Err() != nil {
				return context.Cause(sctx)
			}
			if err := s.handle(ctx, cmd, &reackedThisStream); err != nil {
				return err
			}
			watchdog.Reset(s.opts.Watchdog) // a long command is not silence from the control plane
		}
	}
}

// handle runs one command, or re-acknowledges one already done.
func (s *Session) handle(ctx context.Context, cmd *agentv1.Command, reacked *bool) error {
	last, lastAck, err := s.opts.Acks.LastAck()
	if err != nil {
		return fmt.Errorf("read last acknowledged sequence: %w", err)
	}
	log := s.log.With("seq", cmd.GetSeq(), "command_id", cmd.GetId())
	if cmd.GetSeq() <= last {
		// Done before: the acknowledgement was lost. Acknowledging the last sequence covers
		// this one too; once per stream is enough.
		s.mCommands.WithLabelValues("skipped").Inc()
		log.Info("command already done; acknowledging again", "last_acked_seq", last)
		if *reacked && cmd.GetSeq() != last {
			return nil
		}
		*reacked = true
		a := identity.Ack{Seq: cmd.GetSeq(), OK: true, Output: "{}"}
		if lastAck != nil && lastAck.Seq == last {
			a = *lastAck
		}
		return s.ack(ctx, a)
	}

	log.Info("running command", "kind", kindOf(cmd))
	cctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
	started := time.Now()
	out, err := s.opts.Executor.Execute(cctx, cmd)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: leave it unacknowledged; it comes again and is idempotent.
		return ctx.Err()
	}
	a := identity.Ack{Seq: cmd.GetSeq(), OK: err == nil, Output: out}
	if err != nil {
		a.Error = truncate(err.Error(), maxErrorLen)
		a.Output = ""
		s.mCommands.WithLabelValues("error").Inc()
		log.Warn("command failed", "kind", kindOf(cmd), "error", err, "duration", time.Since(started).String())
	} else {
		if a.Output == "" {
			a.Output = "{}"
		}
		if len(a.Output) > maxOutputLen {
			a = identity.Ack{Seq: cmd.GetSeq(), Error: fmt.Sprintf("the command's output has %d bytes, more than %d", len(a.Output), maxOutputLen)}
		}
		s.mCommands.WithLabelValues("ok").Inc()
		log.Info("command done", "kind", kindOf(cmd), "duration", time.Since(started).String())
	}
	// Durable before it is acknowledged: after a crash the command is skipped, not rerun.
	if err := s.opts.Acks.SaveAck(a); err != nil {
		return fmt.Errorf("record acknowledgement of %d: %w", a.Seq, err)
	}
	s.mLastAcked.Set(float64(a.Seq))
	return s.ack(ctx, a)
}

func (s *Session) ack(ctx context.Context, a identity.Ack) error {
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := s.opts.Client.API().Ack(actx, connect.NewRequest(&agentv1.AckRequest{Seq: a.Seq, Ok: a.OK, Error: a.Error, Output: a.Output}))
	if err != nil {
		s.reack.Store(true)
		return fmt.Errorf("ack %d: %w", a.Seq, err)
	}
	s.reack.Store(false)
	return nil
}

func kindOf(cmd *agentv1.Command) string {
	name := fmt.Sprintf("%T", cmd.GetKind())
	name = strings.TrimPrefix(name, "*agentv1.Command_")
	return name
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// queue is an unbounded FIFO, so that receiving (and with it the watchdog) never waits for a
// slow command.
type queue struct {
	mu    sync.Mutex
	items []*agentv1.Command
	ready chan struct{}
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(c *agentv1.Command) {
	q.mu.Lock()
	q.items = append(q.items, c)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pop() *agentv1.Command {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	c := q.items[0]
	q.items = q.items[1:]
	return c
}
