package nodes

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// standingMaxAge bounds how long a good standing is remembered without being read again, so
// certificates that are no longer presented (renewed, expired) leave the cache.
const standingMaxAge = 10 * time.Minute

// standingCache remembers node certificates found good (issued here, not revoked, their node
// not removed), so that a heartbeat does not cost a database query. It never remembers a
// refusal, and it is trusted only while this replica's listener is connected:
//   - NodeStandingChannel, which every revocation and removal notifies on commit, drops the
//     node's entries on every replica, within the time a notification takes;
//   - this replica's own removals drop them synchronously (Manager.Close);
//   - while the listener is down nothing is remembered, and everything is forgotten when it
//     (re)connects, since notifications may have been missed meanwhile;
//   - every poll interval the remembered serials are checked against the database in one
//     query, which bounds the life of a stale entry even if a notification were lost.
//
// A lookup that raced an invalidation does not store its (possibly stale) answer: every
// invalidation moves gen, and an answer is stored only if gen did not move while it was read.
type standingCache struct {
	mu      sync.Mutex
	live    bool
	gen     uint64
	entries map[string]standingEntry // by serial
}

type standingEntry struct {
	standing store.CertificateStanding
	// at is when the standing was read from the database.
	at time.Time
}

func newStandingCache() *standingCache {
	return &standingCache{entries: map[string]standingEntry{}}
}

// get returns the remembered standing of serial, if it is fresh enough.
func (c *standingCache) get(serial string, now time.Time) (store.CertificateStanding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[serial]
	if !ok || !c.live {
		return store.CertificateStanding{}, false
	}
	if now.Sub(e.at) > standingMaxAge {
		delete(c.entries, serial)
		return store.CertificateStanding{}, false
	}
	return e.standing, true
}

// begin is called before reading a standing from the database; its result goes to put.
func (c *standingCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put remembers a good standing read since begin returned gen, unless the cache was
// invalidated meanwhile or is not trusted now.
func (c *standingCache) put(serial string, s store.CertificateStanding, gen uint64, now time.Time) {
	if s.Revoked || s.NodeRemoved {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	c.entries[serial] = standingEntry{standing: s, at: now}
}

// forgetNode drops every remembered certificate of a node.
func (c *standingCache) forgetNode(nodeID uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for serial, e := range c.entries {
		if e.standing.NodeID == nodeID {
			delete(c.entries, serial)
		}
	}
}

// forgetSerials drops the given certificates.
func (c *standingCache) forgetSerials(serials []string) {
	if len(serials) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, serial := range serials {
		delete(c.entries, serial)
	}
}

// setLive forgets everything and says whether invalidations arrive from now on (the listener
// connected) or may be missed (it disconnected).
func (c *standingCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	clear(c.entries)
}

// serials returns the remembered serials.
func (c *standingCache) serials() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.entries))
	for serial := range c.entries {
		out = append(out, serial)
	}
	return out
}

// CertificateStanding returns the standing of a node certificate: from the cache when this
// replica remembers it as good, otherwise from the database (remembering it when good). See
// standingCache for how a revocation reaches the cache. The agent listener uses it for
// heartbeats only; other agent RPCs read the database every time.
//
// A good standing also tells the manager the node's cluster, so that a heartbeat arriving
// before the node's session started here needs no query of its own.
func (m *Manager) CertificateStanding(ctx context.Context, serial string) (store.CertificateStanding, error) {
	s, ok := m.standing.get(serial, m.now())
	if !ok {
		gen := m.standing.begin()
		var err error
		if s, err = m.store.CertificateStanding(ctx, serial); err != nil {
			return s, err
		}
		m.standing.put(serial, s, gen, m.now())
	}
	if !s.Revoked && !s.NodeRemoved {
		m.learnCluster(s.NodeID, s.ClusterID)
	}
	return s, nil
}

// learnCluster records a node's cluster if this replica does not know it yet, without
// counting as hearing from the node.
func (m *Manager) learnCluster(nodeID, clusterID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ln := m.live[nodeID]
	if ln == nil {
		ln = &liveNode{}
		m.live[nodeID] = ln
	}
	if ln.clusterID == uuid.Nil {
		ln.clusterID = clusterID
	}
}

// recheckStandings checks every remembered certificate against the database in one query and
// drops those no longer good.
func (m *Manager) recheckStandings(ctx context.Context) error {
	serials := m.standing.serials()
	if len(serials) == 0 {
		return nil
	}
	bad, err := m.store.CertificatesNoLongerGood(ctx, serials)
	if err != nil {
		return err
	}
	m.standing.forgetSerials(bad)
	return nil
}
