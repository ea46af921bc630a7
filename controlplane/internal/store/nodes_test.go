package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	"skypanel/controlplane/internal/testenv"
)

func TestNodeSelectionsPickTheNodesTheyName(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	cluster, other := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{cluster, other} {
		_, err := st.Pool().Exec(ctx, `INSERT INTO clusters (id, name, gossip_key_sealed, state) VALUES ($1, $2, 'x', 'active')`,
			id, id.String())
		require.NoError(t, err)
	}
	enrolled := time.Now().Add(-time.Hour)
	node := func(cluster uuid.UUID, role int16, state, labels, swarmID string, removed bool) uuid.UUID {
		t.Helper()
		id := uuid.New()
		var removedAt *time.Time
		if removed {
			removedAt = &enrolled
		}
		enrolled = enrolled.Add(time.Second) // listed in enrollment order
		_, err := st.Pool().Exec(ctx, `INSERT INTO nodes (id, cluster_id, role, state, labels, swarm_node_id, enrolled_at, removed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, cluster, role, state, labels, swarmID, enrolled, removedAt)
		require.NoError(t, err)
		return id
	}
	m, w := store.RoleManagerNode, store.RoleWorkerNode
	edgeManager := node(cluster, m, "ready", `{"edge": "true"}`, "s1", false)
	edgeWorker := node(cluster, w, "down", `{"edge": "true", "zone": "a"}`, "s2", false)
	node(cluster, w, "ready", `{"edge": "false"}`, "s3", false)   // not an edge
	node(cluster, w, "ready", `{"zone": "edge"}`, "s4", false)    // not an edge either
	node(cluster, w, "enrolling", `{"edge": "true"}`, "", false)  // not in the swarm yet
	node(cluster, w, "removing", `{"edge": "true"}`, "s5", false) // leaving
	node(cluster, w, "removed", `{"edge": "true"}`, "s6", true)   // gone
	node(other, m, "ready", `{"edge": "true"}`, "s7", false)      // another cluster
	downManager := node(cluster, m, "down", `{}`, "s8", false)    // a manager, not ready
	readyManager := node(cluster, m, "ready", `{}`, "s9", false)  // a manager
	node(cluster, m, "ready", `{}`, "", false)                    // not in the swarm
	node(cluster, m, "ready", `{}`, "s10", true)                  // removed

	edges, err := st.LabelledNodeIDs(ctx, cluster, "edge")
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{edgeManager, edgeWorker}, edges)

	managers, err := st.ReadyManagers(ctx, cluster)
	require.NoError(t, err)
	var ids []uuid.UUID
	for _, n := range managers {
		ids = append(ids, n.ID)
	}
	require.Equal(t, []uuid.UUID{edgeManager, readyManager}, ids)
	require.NotContains(t, ids, downManager)
}
