package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"skypanel/agent/internal/backoff"
	"skypanel/agent/internal/controlplanetest"
	"skypanel/agent/internal/identity"
	"skypanel/agent/internal/link"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
)

// recorder is an Executor that records what it ran.
type recorder struct {
	mu   sync.Mutex
	ran  []int64
	fail map[int64]bool
}

func (r *recorder) Execute(_ context.Context, cmd *agentv1.Command) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, cmd.GetSeq())
	if r.fail[cmd.GetSeq()] {
		return "", fmt.Errorf("command %d: boom", cmd.GetSeq())
	}
	return fmt.Sprintf(`{"seq":%d}`, cmd.GetSeq()), nil
}

func (r *recorder) Ran() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.ran...)
}

type bundle struct {
	cp  *controlplanetest.Server
	id  *identity.Identity
	exe *recorder
}

// run starts a session against cp with fast timings; it stops when the test ends.
func run(t *testing.T, cp *controlplanetest.Server, id *identity.Identity, exe Executor, tweak func(*Options)) *Session {
	t.Helper()
	client := link.New(cp.URL, id.TLSConfig())
	opts := Options{
		Client: client, Acks: id, Executor: exe, AgentVersion: "test",
		Watchdog: 5 * time.Second,
		Backoff:  backoff.Policy{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; client.Close() })
	return s
}

func setup(t *testing.T, opts controlplanetest.Options) bundle {
	t.Helper()
	cp := controlplanetest.New(t, opts)
	return bundle{cp: cp, id: cp.NewIdentity(t, "node-1", time.Hour), exe: &recorder{fail: map[int64]bool{}}}
}

func cmds(n int) []*agentv1.Command {
	out := make([]*agentv1.Command, n)
	for i := range out {
		out[i] = &agentv1.Command{Id: fmt.Sprintf("c%d", i+1), Kind: &agentv1.Command_SwarmLeave{SwarmLeave: &agentv1.SwarmLeave{}}}
	}
	return out
}

func TestCommandsRunInOrderAndAreAcknowledgedAfterBeingRecorded(t *testing.T) {
	var b bundle
	var mu sync.Mutex
	var notDurable []int64
	b = setup(t, controlplanetest.Options{Keepalive: time.Second, OnAck: func(a *agentv1.AckRequest) {
		// When the control plane hears of an ack, the agent must already have it on disk.
		last, _, err := b.id.LastAck()
		if err != nil || last < a.GetSeq() {
			mu.Lock()
			notDurable = append(notDurable, a.GetSeq())
			mu.Unlock()
		}
	}})
	b.exe.fail[2] = true
	b.cp.Queue(cmds(3)...)
	run(t, b.cp, b.id, b.exe, nil)

	b.cp.Wait("three acks", 10*time.Second, func() bool { return len(b.cp.Acks()) >= 3 })
	acks := b.cp.Acks()
	if got := b.exe.Ran(); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("ran %v, want [1 2 3]", got)
	}
	if !acks[0].Ok || acks[0].Output != `{"seq":1}` || acks[1].Ok || !strings.Contains(acks[1].Error, "boom") || !acks[2].Ok {
		t.Fatalf("acks = %v", acks)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notDurable) > 0 {
		t.Fatalf("acks %v reached the control plane before they were recorded", notDurable)
	}
	if last, _, _ := b.id.LastAck(); last != 3 {
		t.Fatalf("last acked = %d, want 3", last)
	}
}

func TestAReconnectResumesAfterTheLastAcknowledgedCommand(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	b.cp.Queue(cmds(2)...)
	run(t, b.cp, b.id, b.exe, nil)
	b.cp.Wait("two acks", 10*time.Second, func() bool { return len(b.cp.Acks()) >= 2 })

	b.cp.DropStreams() // as when the control plane restarts
	b.cp.Wait("a second connect", 10*time.Second, func() bool { return len(b.cp.Connects()) >= 2 })
	if got := b.cp.Connects()[1].GetAfterSeq(); got != 2 {
		t.Fatalf("reconnected after seq %d, want 2", got)
	}
	b.cp.Queue(cmds(1)...)
	b.cp.Wait("the third ack", 10*time.Second, func() bool {
		for _, a := range b.cp.Acks() {
			if a.GetSeq() == 3 {
				return true
			}
		}
		return false
	})
	if got := b.exe.Ran(); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("ran %v, want [1 2 3]", got)
	}
}

func TestCommandsDoneBeforeAreSkippedAndAcknowledgedAgainWithTheirOutput(t *testing.T) {
	// The control plane lost the acks of 1 and 2 and sends everything again.
	b := setup(t, controlplanetest.Options{Keepalive: time.Second, IgnoreAfterSeq: true})
	if err := b.id.SaveAck(identity.Ack{Seq: 2, OK: true, Output: `{"swarm_id":"s"}`}); err != nil {
		t.Fatal(err)
	}
	b.cp.Queue(cmds(3)...)
	run(t, b.cp, b.id, b.exe, nil)

	b.cp.Wait("the ack of 3", 10*time.Second, func() bool {
		for _, a := range b.cp.Acks() {
			if a.GetSeq() == 3 {
				return true
			}
		}
		return false
	})
	if got := b.exe.Ran(); fmt.Sprint(got) != "[3]" {
		t.Fatalf("ran %v, want only [3]", got)
	}
	var repeated int
	for _, a := range b.cp.Acks() {
		if a.GetSeq() == 2 {
			repeated++
			if a.GetOutput() != `{"swarm_id":"s"}` || !a.GetOk() {
				t.Fatalf("repeated ack = %v, want the stored outcome", a)
			}
		}
		if a.GetSeq() == 1 {
			t.Fatalf("acked 1 separately (acking 2 covers it): %v", b.cp.Acks())
		}
	}
	if repeated == 0 {
		t.Fatal("the stored acknowledgement was not repeated")
	}
}

func TestASilentStreamIsDroppedByTheWatchdog(t *testing.T) {
	b := setup(t, controlplanetest.Options{}) // no keepalives, no commands
	run(t, b.cp, b.id, b.exe, func(o *Options) { o.Watchdog = 200 * time.Millisecond })
	b.cp.Wait("three connects", 10*time.Second, func() bool { return len(b.cp.Connects()) >= 3 })
}

func TestKeepalivesKeepTheStreamOpen(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: 50 * time.Millisecond})
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Watchdog = 400 * time.Millisecond })
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	// Several watchdog periods pass while keepalives arrive; a drop would show as a reconnect.
	b.cp.Queue(cmds(1)...)
	deadline := time.Now().Add(1200 * time.Millisecond)
	b.cp.Wait("three watchdog periods", 5*time.Second, func() bool { return time.Now().After(deadline) })
	if n := len(b.cp.Connects()); n != 1 {
		t.Fatalf("connects = %d, want 1", n)
	}
}

// Reports answered over the stream's connection stand in for keepalives: the control plane
// sends none on the stream while they come, and the watchdog counts them instead.
func TestReportKeepalivesKeepASilentStreamOpen(t *testing.T) {
	b := setup(t, controlplanetest.Options{}) // no keepalives, no commands
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Watchdog = 300 * time.Millisecond })
	b.cp.Queue(cmds(1)...) // the first message opens the stream
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	deadline := time.Now().Add(1500 * time.Millisecond) // five watchdog periods
	for time.Now().Before(deadline) {
		s.Keepalive()
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(b.cp.Connects()); n != 1 {
		t.Fatalf("connects = %d while report keepalives came, want 1", n)
	}
	// Without them, the silent stream is dropped.
	b.cp.Wait("a reconnect once they stop", 10*time.Second, func() bool { return len(b.cp.Connects()) >= 2 })
}

func TestARevokedNodeIsRefusedPermanently(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	b.cp.Revoke("node-1")
	client := link.New(b.cp.URL, b.id.TLSConfig())
	defer client.Close()
	stream, err := client.API().Connect(context.Background(), connect.NewRequest(&agentv1.ConnectRequest{}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if !Permanent(err) {
		t.Fatalf("Permanent(%v) = false", err)
	}
}

func TestRetryDelays(t *testing.T) {
	s, err := New(Options{Client: link.New("https://127.0.0.1:1", nil), Acks: &identity.Identity{}, Executor: &recorder{},
		Backoff: backoff.Policy{Base: time.Second, Cap: 30 * time.Second, Rand: func() float64 { return 0.5 }}})
	if err != nil {
		t.Fatal(err)
	}
	transient := errors.New("connection reset")
	refused := connect.NewError(connect.CodePermissionDenied, errors.New("this node was removed"))
	for _, tc := range []struct {
		name    string
		err     error
		lasted  time.Duration
		attempt int
		want    time.Duration
		kind    retryKind
		next    int
	}{
		{"a first failure waits up to the base", transient, 0, 0, 500 * time.Millisecond, retryBackoff, 1},
		{"failures double the bound", transient, 0, 3, 4 * time.Second, retryBackoff, 4},
		{"the bound stops at the cap", transient, 0, 10, 15 * time.Second, retryBackoff, 11},
		{"a stream that lasted a minute resets the backoff", transient, time.Minute, 10, 500 * time.Millisecond, retryBackoff, 1},
		{"a refusal waits the cap", refused, 0, 0, 30 * time.Second, retryRefused, 0},
		{"an unauthenticated stream waits the cap", connect.NewError(connect.CodeUnauthenticated, errors.New("revoked")), 0, 2, 30 * time.Second, retryRefused, 2},
		{"a certificate rotation reconnects at once", fmt.Errorf("x: %w", errCertRenewed), 0, 4, 0, retryNow, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attempt := tc.attempt
			d, kind := s.retryDelay(tc.err, tc.lasted, &attempt)
			if d != tc.want || kind != tc.kind || attempt != tc.next {
				t.Fatalf("retryDelay = %s %v (attempt %d), want %s %v (attempt %d)", d, kind, attempt, tc.want, tc.kind, tc.next)
			}
		})
	}
}

// fakeLogs is a LogSource: each stream emits lines, then waits (follow) or ends.
type fakeLogs struct {
	mu      sync.Mutex
	lines   int
	follow  bool
	err     error
	running map[string]bool
	stopped map[string]bool
}

func (f *fakeLogs) ServiceLogs(ctx context.Context, req *agentv1.LogsFollow, emit func(*agentv1.AgentLogLine) error) error {
	f.mu.Lock()
	f.running[req.GetStreamId()] = true
	n, follow, failWith := f.lines, f.follow, f.err
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[req.GetStreamId()] = false
		f.stopped[req.GetStreamId()] = true
		f.mu.Unlock()
	}()
	for i := range n {
		if err := emit(&agentv1.AgentLogLine{TaskId: "t1", Slot: int32(i%3 + 1), Stream: "stdout", Text: fmt.Sprintf("line %d", i)}); err != nil {
			return err
		}
	}
	if failWith != nil {
		return failWith
	}
	if follow && req.GetFollow() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeLogs) state(id string) (running, stopped bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[id], f.stopped[id]
}

func newFakeLogs(lines int, follow bool) *fakeLogs {
	return &fakeLogs{lines: lines, follow: follow, running: map[string]bool{}, stopped: map[string]bool{}}
}

func logsFollow(streamID string, follow bool) *agentv1.Command {
	return &agentv1.Command{Id: "ephemeral-" + streamID, Kind: &agentv1.Command_LogsFollow{LogsFollow: &agentv1.LogsFollow{
		StreamId: streamID, ServiceName: "app-1", Follow: follow}}}
}

// pushed returns the lines pushed for a stream, in order, and whether the last push said done.
func pushed(cp *controlplanetest.Server, streamID string) (texts []string, done bool, errText string) {
	for _, r := range cp.Logs(streamID) {
		for _, l := range r.GetLines() {
			texts = append(texts, l.GetText())
		}
		done, errText = r.GetDone(), r.GetError()
	}
	return texts, done, errText
}

func TestALogsFollowIsPushedInBatchesAndNeverAcknowledged(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	src := newFakeLogs(1200, false)
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Logs = src })
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	b.cp.Queue(cmds(1)...) // a sequenced command before the ephemeral one
	b.cp.Wait("the first ack", 10*time.Second, func() bool { return len(b.cp.Acks()) == 1 })

	if n := b.cp.SendEphemeral(logsFollow("s1", false)); n != 1 {
		t.Fatalf("sent on %d streams", n)
	}
	b.cp.Wait("the logs to end", 10*time.Second, func() bool { _, done, _ := pushed(b.cp, "s1"); return done })

	texts, _, errText := pushed(b.cp, "s1")
	if len(texts) != 1200 || texts[0] != "line 0" || texts[1199] != "line 1199" || errText != "" {
		t.Fatalf("pushed %d lines (first %q), error %q; want 1200 in order", len(texts), texts[0], errText)
	}
	for _, r := range b.cp.Logs("s1") {
		if len(r.GetLines()) > 500 {
			t.Fatalf("one PushLogs carried %d lines, more than 500", len(r.GetLines()))
		}
	}
	if got := b.exe.Ran(); fmt.Sprint(got) != "[1]" {
		t.Fatalf("the executor ran %v; logs_follow must not go through it", got)
	}
	if acks := b.cp.Acks(); len(acks) != 1 {
		t.Fatalf("acks = %v; logs_follow must not be acknowledged", acks)
	}
	if last, _, _ := b.id.LastAck(); last != 1 {
		t.Fatalf("last acked = %d, want 1: an ephemeral command is never recorded", last)
	}
}

func TestAFollowSendsKeepalivesAndStopsWhenTheReaderGoesAway(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	src := newFakeLogs(3, true)
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Logs = src })
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	b.cp.SendEphemeral(logsFollow("s2", true))
	b.cp.Wait("three lines", 10*time.Second, func() bool { texts, _, _ := pushed(b.cp, "s2"); return len(texts) == 3 })

	// Idle: an empty PushLogs at least every 2 s lets the control plane say stop.
	b.cp.Wait("an empty keepalive batch", 10*time.Second, func() bool {
		reqs := b.cp.Logs("s2")
		return len(reqs) > 1 && len(reqs[len(reqs)-1].GetLines()) == 0
	})
	if running, _ := src.state("s2"); !running {
		t.Fatal("the follow stopped on its own")
	}
	b.cp.StopLogs("s2")
	b.cp.Wait("the follow to stop", 10*time.Second, func() bool { _, stopped := src.state("s2"); return stopped })
	if _, done, _ := pushed(b.cp, "s2"); done {
		t.Fatal("a follow the control plane stopped was reported done")
	}
}

func TestAFollowThatFailsIsReportedDoneWithTheError(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	src := newFakeLogs(2, false)
	src.err = errors.New("service logs app-1: no such service")
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Logs = src })
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	b.cp.SendEphemeral(logsFollow("s3", false))
	b.cp.Wait("done", 10*time.Second, func() bool { _, done, _ := pushed(b.cp, "s3"); return done })
	texts, _, errText := pushed(b.cp, "s3")
	if len(texts) != 2 || !strings.Contains(errText, "no such service") {
		t.Fatalf("pushed %v with error %q", texts, errText)
	}
}

func TestFollowsBeyondTheLimitAreRefused(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	src := newFakeLogs(0, true)
	s := run(t, b.cp, b.id, b.exe, func(o *Options) { o.Logs = src; o.MaxFollows = 1 })
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	b.cp.SendEphemeral(logsFollow("a", true))
	b.cp.Wait("the first follow to run", 10*time.Second, func() bool { running, _ := src.state("a"); return running })
	b.cp.SendEphemeral(logsFollow("a", true)) // the same stream again: ignored
	b.cp.SendEphemeral(logsFollow("b", true))
	b.cp.Wait("the second to be refused", 10*time.Second, func() bool { _, done, _ := pushed(b.cp, "b"); return done })
	if _, _, errText := pushed(b.cp, "b"); !strings.Contains(errText, "limit") {
		t.Fatalf("refusal error = %q", errText)
	}
	if running, _ := src.state("a"); !running {
		t.Fatal("the first follow stopped")
	}
	if _, done, _ := pushed(b.cp, "a"); done {
		t.Fatal("repeating a followed stream's command ended it")
	}
}

func TestALogsFollowWithoutALogSourceIsAnsweredWithAnError(t *testing.T) {
	b := setup(t, controlplanetest.Options{Keepalive: time.Second})
	s := run(t, b.cp, b.id, b.exe, nil)
	b.cp.Wait("the stream to open", 10*time.Second, s.Connected)
	b.cp.SendEphemeral(logsFollow("s4", true))
	b.cp.Wait("done", 10*time.Second, func() bool { _, done, _ := pushed(b.cp, "s4"); return done })
	if len(b.exe.Ran()) != 0 || len(b.cp.Acks()) != 0 {
		t.Fatalf("ran %v, acks %v", b.exe.Ran(), b.cp.Acks())
	}
}
