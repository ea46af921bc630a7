package deploy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"skypanel/controlplane/internal/store"
	agentv1 "skypanel/shared/gen/go/skypanel/agent/v1"
	"skypanel/shared/workload"
)

// Log streams: a reader (StreamLogs) asks a manager of the app's cluster, through its live
// session, to follow the service's logs; the manager pushes batches back with PushLogs, which
// land in the reader's channel. A stream lives on the replica whose session carries the
// manager; PushLogs reaching a replica that has no such reader is told to stop.

// ErrNoManagerSession means no manager of the app's cluster has a session on this replica.
var ErrNoManagerSession = errors.New("no manager node of the app's cluster is connected")

// LogBatch is what a reader receives: lines, or the end of the stream.
type LogBatch struct {
	Lines []*agentv1.AgentLogLine
	Done  bool
	Err   string
}

// LogStream is one reader's stream, and the node allowed to feed it.
type LogStream struct {
	node uuid.UUID
	// C carries the batches.
	C chan LogBatch
	// Done is closed when the stream ends (its reader stopped it, or it was dropped).
	Done chan struct{}
	once sync.Once
}

// logStreams holds the readers of this replica.
type logStreams struct {
	mu      sync.Mutex
	streams map[string]*LogStream
}

// FollowLogs starts a log stream of the app; stop ends it.
func (d *Deployer) FollowLogs(ctx context.Context, app store.App, tail int32, since time.Time, follow bool) (*LogStream, func(), error) {
	ns, err := d.opts.Store.ClusterNodes(ctx, app.ClusterID)
	if err != nil {
		return nil, nil, err
	}
	id := uuid.NewString()
	for _, n := range ns {
		if n.Role != int16(agentv1.NodeRole_NODE_ROLE_MANAGER) || n.State != "ready" || !d.opts.Nodes.Connected(n.ID) {
			continue
		}
		stream := &LogStream{node: n.ID, C: make(chan LogBatch, 64), Done: make(chan struct{})}
		d.logs.add(id, stream)
		cmd := &agentv1.LogsFollow{StreamId: id, ServiceName: workload.ServiceName(app.ID.String()), Tail: tail, Follow: follow}
		if !since.IsZero() {
			cmd.Since = timestamppb.New(since)
		}
		if d.opts.Nodes.SendEphemeral(n.ID, &agentv1.Command{Kind: &agentv1.Command_LogsFollow{LogsFollow: cmd}}) {
			return stream, func() { d.logs.remove(id) }, nil
		}
		d.logs.remove(id)
	}
	return nil, nil, ErrNoManagerSession
}

// PushLogs delivers a node's batch to its reader. It reports false when the reader is gone
// (or the stream is not the node's), telling the agent to stop.
func (d *Deployer) PushLogs(ctx context.Context, nodeID uuid.UUID, r *agentv1.PushLogsRequest) bool {
	s := d.logs.get(r.GetStreamId())
	if s == nil || s.node != nodeID {
		return false
	}
	b := LogBatch{Lines: r.GetLines(), Done: r.GetDone(), Err: r.GetError()}
	select {
	case s.C <- b:
	case <-s.Done:
		return false
	case <-ctx.Done():
		return false
	case <-time.After(5 * time.Second):
		// The reader is not keeping up: end its stream rather than pile up lines.
		d.logs.remove(r.GetStreamId())
		return false
	}
	if b.Done {
		d.logs.remove(r.GetStreamId())
	}
	return true
}

func (l *logStreams) add(id string, s *LogStream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams == nil {
		l.streams = map[string]*LogStream{}
	}
	l.streams[id] = s
}

func (l *logStreams) get(id string) *LogStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[id]
}

func (l *logStreams) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.streams[id]; ok {
		delete(l.streams, id)
		s.once.Do(func() { close(s.Done) })
	}
}
