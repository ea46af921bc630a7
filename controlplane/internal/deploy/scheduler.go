package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"skypanel/controlplane/internal/store"
)

// ErrNoRoom is the scheduler's refusal; its message says why, for the caller.
var ErrNoRoom = errors.New("no room")

// Need is what a placement must reserve: replicas × the plan's size.
type Need struct {
	CPUMillis, MemoryMiB int64
}

// NeedOf is the reservation of n replicas of a plan.
func NeedOf(p store.Plan, replicas int32) Need {
	return Need{CPUMillis: int64(p.CPUMillis) * int64(replicas), MemoryMiB: int64(p.MemoryMiB) * int64(replicas)}
}

func (n Need) String() string {
	return fmt.Sprintf("%s CPU and %d MiB", cores(n.CPUMillis), n.MemoryMiB)
}

func cores(millis int64) string {
	if millis%1000 == 0 {
		return fmt.Sprint(millis / 1000)
	}
	return fmt.Sprintf("%.2f", float64(millis)/1000)
}

func (n Need) fits(c store.ClusterCapacity) bool {
	return c.ReservedCPUMillis+n.CPUMillis <= c.CPUMillis && c.ReservedMemoryMiB+n.MemoryMiB <= c.MemoryMiB
}

// Place chooses the cluster for a new app of an organization: its dedicated cluster when it
// has one, else the shared cluster with the most free CPU that fits the need. The caller is
// in a transaction; the chosen cluster's placement lock is held until it ends, so racing
// placements cannot both take the last room. The error wraps ErrNoRoom with the reason.
func Place(ctx context.Context, q *store.Queries, orgID uuid.UUID, need Need) (uuid.UUID, error) {
	all, err := q.ClusterCapacities(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	var dedicated, shared []store.ClusterCapacity
	for _, c := range all {
		switch {
		case c.DedicatedOrganizationID == nil:
			shared = append(shared, c)
		case *c.DedicatedOrganizationID == orgID:
			dedicated = append(dedicated, c)
		}
	}
	candidates := shared
	if len(dedicated) > 0 {
		candidates = dedicated
	}
	if len(candidates) == 0 {
		return uuid.Nil, fmt.Errorf("%w: there is no active cluster to run apps on yet: a platform admin must add a node", ErrNoRoom)
	}
	var best *store.ClusterCapacity
	for i := range candidates {
		c := &candidates[i]
		if !need.fits(*c) {
			continue
		}
		if best == nil || c.CPUMillis-c.ReservedCPUMillis > best.CPUMillis-best.ReservedCPUMillis {
			best = c
		}
	}
	if best == nil {
		c := candidates[0]
		return uuid.Nil, fmt.Errorf("%w: no cluster has room for %s (the roomiest, %s, has %s free)", ErrNoRoom, need,
			c.Name, Need{CPUMillis: c.CPUMillis - c.ReservedCPUMillis, MemoryMiB: c.MemoryMiB - c.ReservedMemoryMiB})
	}
	if err := Reserve(ctx, q, best.ClusterID, need); err != nil {
		return uuid.Nil, err
	}
	return best.ClusterID, nil
}

// Reserve checks, under the cluster's placement lock, that the cluster still has room for
// more (an app growing by that much); the lock is held until the transaction ends.
func Reserve(ctx context.Context, q *store.Queries, clusterID uuid.UUID, more Need) error {
	if more.CPUMillis <= 0 && more.MemoryMiB <= 0 {
		return nil
	}
	if err := q.LockClusterCapacity(ctx, clusterID); err != nil {
		return err
	}
	all, err := q.ClusterCapacities(ctx)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.ClusterID != clusterID {
			continue
		}
		if !more.fits(c) {
			return fmt.Errorf("%w: cluster %s has %s free, and this needs %s more", ErrNoRoom, c.Name,
				Need{CPUMillis: c.CPUMillis - c.ReservedCPUMillis, MemoryMiB: c.MemoryMiB - c.ReservedMemoryMiB}, more)
		}
		return nil
	}
	return fmt.Errorf("%w: the app's cluster is not active", ErrNoRoom)
}
