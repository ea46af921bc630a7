package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// Log following defaults (docs/agents-contract.md, "LogsFollow").
const (
	// DefaultMaxFollows bounds the log streams one agent follows at once.
	DefaultMaxFollows = 32
	// logBatchLines is the most lines one PushLogs carries.
	logBatchLines = 500
	// logFlushAfter is how long a line waits for others to share its PushLogs.
	logFlushAfter = 200 * time.Millisecond
	// logKeepalive is the longest time without a PushLogs while following: an empty one
	// asks the control plane whether the reader is still there.
	logKeepalive = 2 * time.Second
	// logPushFailures consecutive failed PushLogs end a follow.
	logPushFailures = 3
	// logBuffer is how many lines the reader may be ahead of the sender.
	logBuffer = 2 * logBatchLines
)

// LogSource reads a service's logs (docker.Engine is one). ServiceLogs calls emit for each
// line and returns nil when the logs end, or an error.
type LogSource interface {
	ServiceLogs(ctx context.Context, req *agentv1.LogsFollow, emit func(*agentv1.AgentLogLine) error) error
}

// follows tracks the log streams being followed, by stream id.
type follows struct {
	mu     sync.Mutex
	active map[string]bool
	wg     sync.WaitGroup
}

// ephemeral handles a command sent outside the outbox (seq 0): it is neither run in
// sequence nor acknowledged nor recorded. ctx is the session's: a follow outlives the stream
// that brought it, so a reconnect does not cut the logs a user is reading.
func (s *Session) ephemeral(ctx context.Context, cmd *agentv1.Command) {
	lf := cmd.GetLogsFollow()
	if lf == nil {
		s.log.Warn("ignoring an unsequenced command that is not logs_follow", "command_id", cmd.GetId(), "kind", kindOf(cmd))
		return
	}
	log := s.log.With("stream_id", lf.GetStreamId(), "service", lf.GetServiceName())
	if lf.GetStreamId() == "" {
		log.Warn("ignoring logs_follow without a stream id")
		return
	}
	reject := func(reason string) {
		log.Warn("refusing logs_follow", "reason", reason)
		s.follows.wg.Add(1)
		go func() {
			defer s.follows.wg.Done()
			_, _ = s.pushLogs(ctx, &agentv1.PushLogsRequest{StreamId: lf.GetStreamId(), Done: true, Error: reason})
		}()
	}
	if s.opts.Logs == nil {
		reject("this agent cannot read logs")
		return
	}
	s.follows.mu.Lock()
	if s.follows.active[lf.GetStreamId()] {
		s.follows.mu.Unlock()
		log.Debug("logs_follow for a stream already followed")
		return
	}
	if len(s.follows.active) >= s.opts.MaxFollows {
		s.follows.mu.Unlock()
		reject(fmt.Sprintf("this node already follows %d log streams, its limit", s.opts.MaxFollows))
		return
	}
	s.follows.active[lf.GetStreamId()] = true
	s.mFollows.Inc()
	s.follows.wg.Add(1)
	s.follows.mu.Unlock()
	go func() {
		defer func() {
			s.follows.mu.Lock()
			delete(s.follows.active, lf.GetStreamId())
			s.follows.mu.Unlock()
			s.mFollows.Dec()
			s.follows.wg.Done()
		}()
		log.Info("following logs", "tail", lf.GetTail(), "follow", lf.GetFollow())
		reason := s.follow(ctx, lf)
		log.Info("stopped following logs", "reason", reason)
	}()
}

// follow reads req's logs and pushes them in batches until they end, the control plane says
// stop, pushing keeps failing, or ctx ends. It returns why it stopped.
func (s *Session) follow(ctx context.Context, req *agentv1.LogsFollow) string {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan *agentv1.AgentLogLine, logBuffer)
	readDone := make(chan error, 1)
	go func() {
		readDone <- s.opts.Logs.ServiceLogs(ctx, req, func(l *agentv1.AgentLogLine) error {
			select {
			case lines <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	// Wait for the reader on the way out: it must not outlive the follow.
	defer func() { cancel(); <-readDone }()

	var (
		batch    []*agentv1.AgentLogLine
		failures int
		lastPush = time.Now()
	)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	keepalive := time.NewTicker(logKeepalive / 2)
	defer keepalive.Stop()

	// push sends the batch (at most logBatchLines of it) and says whether to go on.
	push := func(done bool, errText string) (bool, string) {
		n := min(len(batch), logBatchLines)
		if done && n < len(batch) {
			done = false // the rest follows first
		}
		stop, err := s.pushLogs(ctx, &agentv1.PushLogsRequest{
			StreamId: req.GetStreamId(), Lines: batch[:n], Done: done, Error: truncate(errText, maxErrorLen)})
		lastPush = time.Now()
		if err != nil {
			failures++
			if Permanent(err) || failures >= logPushFailures || ctx.Err() != nil {
				return false, fmt.Sprintf("push logs: %v", err)
			}
			return true, ""
		}
		failures = 0
		batch = batch[n:]
		if stop {
			return false, "the control plane's reader went away"
		}
		return true, ""
	}

	for {
		select {
		case <-ctx.Done():
			return "the session ended"
		case l := <-lines:
			if len(batch) == 0 {
				flush.Reset(logFlushAfter)
			}
			batch = append(batch, l)
			if len(batch) >= logBatchLines {
				if ok, why := push(false, ""); !ok {
					return why
				}
			}
		case <-flush.C:
			if len(batch) > 0 {
				if ok, why := push(false, ""); !ok {
					return why
				}
				if len(batch) > 0 {
					flush.Reset(logFlushAfter)
				}
			}
		case <-keepalive.C:
			if time.Since(lastPush) >= logKeepalive {
				if ok, why := push(false, ""); !ok {
					return why
				}
			}
		case err := <-readDone:
			readDone <- err // for the deferred wait
			// The reader has returned: every line it read is in the channel.
			for more := true; more; {
				select {
				case l := <-lines:
					batch = append(batch, l)
				default:
					more = false
				}
			}
			errText, why := "", "the logs ended"
			if err != nil {
				errText, why = err.Error(), "reading the logs failed: "+err.Error()
			}
			for {
				ok, stopWhy := push(true, errText)
				if !ok {
					return stopWhy
				}
				if len(batch) == 0 && failures == 0 {
					return why
				}
				if failures > 0 {
					select {
					case <-ctx.Done():
						return "the session ended"
					case <-time.After(logFlushAfter):
					}
				}
			}
		}
	}
}

// pushLogs sends one PushLogs and returns the control plane's stop.
func (s *Session) pushLogs(ctx context.Context, req *agentv1.PushLogsRequest) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := s.opts.Client.API().PushLogs(pctx, connect.NewRequest(req))
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return false, ctx.Err()
		}
		s.log.Debug("push logs failed", "stream_id", req.GetStreamId(), "error", err, "lines", len(req.GetLines()))
		return false, err
	}
	return res.Msg.GetStop(), nil
}
