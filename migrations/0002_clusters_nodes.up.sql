-- Clusters, nodes and their agents: the platform CA, enrollment tokens, node certificates,
-- the per-node command outbox, and node metrics.

-- The platform CA. One row; the private key is sealed under the master key.
CREATE TABLE platform_ca (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    cert_pem    text NOT NULL,
    key_sealed  text NOT NULL,
    pin         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clusters (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    state                     text NOT NULL DEFAULT 'pending'
                              CHECK (state IN ('pending', 'initializing', 'active', 'error')),
    dedicated_organization_id uuid REFERENCES organizations (id) ON DELETE RESTRICT,
    overlay_encryption        boolean NOT NULL DEFAULT false,
    swarm_id                  text NOT NULL DEFAULT '',
    -- Swarm join tokens, sealed under the master key; handed only to enrolling agents.
    manager_join_token_sealed text NOT NULL DEFAULT '',
    worker_join_token_sealed  text NOT NULL DEFAULT '',
    -- The memberlist encryption key of the cluster's gossip, sealed.
    gossip_key_sealed         text NOT NULL,
    error                     text NOT NULL DEFAULT '',
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX clusters_name_key ON clusters (name);

CREATE TABLE enrollment_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cluster_id  uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL,
    role        smallint NOT NULL CHECK (role IN (1, 2)), -- 1 manager, 2 worker (the API's NodeRole)
    labels      jsonb NOT NULL DEFAULT '{}',
    usage_limit integer NOT NULL CHECK (usage_limit >= 1),
    usage_count integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    description text NOT NULL DEFAULT '',
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX enrollment_tokens_token_hash_key ON enrollment_tokens (token_hash);
CREATE INDEX enrollment_tokens_cluster_idx ON enrollment_tokens (cluster_id, created_at DESC);

CREATE TABLE nodes (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cluster_id          uuid NOT NULL REFERENCES clusters (id) ON DELETE RESTRICT,
    enrollment_token_id uuid REFERENCES enrollment_tokens (id) ON DELETE SET NULL,
    role                smallint NOT NULL CHECK (role IN (1, 2)),
    state               text NOT NULL DEFAULT 'enrolling'
                        CHECK (state IN ('enrolling', 'ready', 'down', 'unreachable', 'draining', 'removing', 'removed')),
    labels              jsonb NOT NULL DEFAULT '{}',
    hostname            text NOT NULL DEFAULT '',
    advertise_addr      text NOT NULL DEFAULT '',
    os                  text NOT NULL DEFAULT '',
    kernel              text NOT NULL DEFAULT '',
    arch                text NOT NULL DEFAULT '',
    cpus                integer NOT NULL DEFAULT 0,
    memory_bytes        bigint NOT NULL DEFAULT 0,
    docker_version      text NOT NULL DEFAULT '',
    agent_version       text NOT NULL DEFAULT '',
    swarm_node_id       text NOT NULL DEFAULT '',
    availability        text NOT NULL DEFAULT '',
    overlay_encryption  boolean NOT NULL DEFAULT false,
    -- The latest heartbeat, kept whole for the node list; history is in node_metrics.
    last_report         jsonb,
    last_seen_at        timestamptz,
    unreachable_from    uuid[] NOT NULL DEFAULT '{}',
    enrolled_at         timestamptz NOT NULL DEFAULT now(),
    removed_at          timestamptz
);
CREATE INDEX nodes_cluster_idx ON nodes (cluster_id);

-- Every certificate issued to a node; revocation is checked on every agent connection.
CREATE TABLE node_certificates (
    serial      text PRIMARY KEY,
    node_id     uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX node_certificates_node_idx ON node_certificates (node_id);

-- The per-node command outbox. seq orders one node's commands; the agent acknowledges the
-- highest seq it has finished, and resumes after it on reconnect.
CREATE TABLE node_commands (
    node_id     uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    kind        text NOT NULL,
    payload     bytea NOT NULL, -- the protobuf Command, without seq
    created_at  timestamptz NOT NULL DEFAULT now(),
    acked_at    timestamptz,
    ok          boolean,
    error       text NOT NULL DEFAULT '',
    output      text NOT NULL DEFAULT '',
    PRIMARY KEY (node_id, seq)
);
CREATE UNIQUE INDEX node_commands_id_key ON node_commands (id);
CREATE INDEX node_commands_pending_idx ON node_commands (node_id, seq) WHERE acked_at IS NULL;

-- Host metrics: raw samples (kept 24 h) and 5-minute rollups (kept 30 days).
CREATE TABLE node_metrics (
    node_id            uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    sampled_at         timestamptz NOT NULL,
    cpu_percent        real NOT NULL,
    memory_used_bytes  bigint NOT NULL,
    memory_total_bytes bigint NOT NULL,
    disk_used_bytes    bigint NOT NULL,
    disk_total_bytes   bigint NOT NULL,
    net_rx_bytes       bigint NOT NULL,
    net_tx_bytes       bigint NOT NULL,
    load1              real NOT NULL,
    PRIMARY KEY (node_id, sampled_at)
);

CREATE TABLE node_metrics_5m (
    node_id            uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    bucket             timestamptz NOT NULL,
    samples            integer NOT NULL,
    cpu_percent        real NOT NULL,
    memory_used_bytes  bigint NOT NULL,
    memory_total_bytes bigint NOT NULL,
    disk_used_bytes    bigint NOT NULL,
    disk_total_bytes   bigint NOT NULL,
    net_rx_bytes       bigint NOT NULL,
    net_tx_bytes       bigint NOT NULL,
    load1              real NOT NULL,
    PRIMARY KEY (node_id, bucket)
);
