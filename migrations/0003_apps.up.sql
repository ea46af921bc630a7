-- Apps on the clusters: plans, apps, their releases and deployments, the tasks and metrics
-- agents report, custom domains and their certificates, and what each edge node was sent.

CREATE TABLE plans (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    description    text NOT NULL DEFAULT '',
    cpu_millis     integer NOT NULL CHECK (cpu_millis > 0),
    memory_mib     integer NOT NULL CHECK (memory_mib > 0),
    -- The price of one replica for one hour, in minor units of currency.
    price_per_hour bigint NOT NULL CHECK (price_per_hour >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    max_replicas   integer NOT NULL CHECK (max_replicas >= 1),
    max_apps       integer NOT NULL CHECK (max_apps >= 1),
    retired_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_name_key ON plans (name);

CREATE TABLE apps (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    name                text NOT NULL CHECK (name ~ '^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$'),
    plan_id             uuid NOT NULL REFERENCES plans (id) ON DELETE RESTRICT,
    cluster_id          uuid NOT NULL REFERENCES clusters (id) ON DELETE RESTRICT,
    -- The AppSpec (protobuf) with secret values sealed under the master key.
    spec                bytea NOT NULL,
    replicas            integer NOT NULL CHECK (replicas >= 0),
    -- replicas_before_stop is what StartApp scales back to.
    replicas_before_stop integer NOT NULL DEFAULT 1,
    -- deleting: the service is being removed; the row goes when it is gone.
    deleting            boolean NOT NULL DEFAULT false,
    -- suspended: stopped by the platform (billing, an admin); scaled to 0, edge shows a page.
    suspended           boolean NOT NULL DEFAULT false,
    current_release_id  uuid,
    force_update        bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX apps_organization_name_key ON apps (organization_id, name);
CREATE INDEX apps_cluster_idx ON apps (cluster_id);

CREATE TABLE releases (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id          uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version >= 1),
    image           text NOT NULL,
    image_digest    text NOT NULL DEFAULT '',
    spec            bytea NOT NULL, -- as apps.spec, frozen
    plan_id         uuid NOT NULL REFERENCES plans (id) ON DELETE RESTRICT,
    description     text NOT NULL DEFAULT '',
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app_id, version)
);
ALTER TABLE apps ADD FOREIGN KEY (current_release_id) REFERENCES releases (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE deployments (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id             uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    release_id         uuid NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind IN ('deploy', 'rollback', 'scale', 'restart', 'stop', 'start', 'delete')),
    state              text NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'preparing', 'applying', 'rolling_out', 'succeeded', 'failed', 'rolled_back', 'superseded')),
    message            text NOT NULL DEFAULT '',
    automatic_rollback boolean NOT NULL DEFAULT false,
    replicas           integer NOT NULL,
    -- The manager node carrying the deployment and the outbox command it is waiting for.
    node_id            uuid REFERENCES nodes (id) ON DELETE SET NULL,
    command_seq        bigint NOT NULL DEFAULT 0,
    -- events: [{state, at, message}], the state machine's steps with their times.
    events             jsonb NOT NULL DEFAULT '[]',
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
CREATE INDEX deployments_app_idx ON deployments (app_id, created_at DESC);
CREATE INDEX deployments_open_idx ON deployments (app_id) WHERE finished_at IS NULL;

-- app_services is each app service as the latest manager report saw it.
CREATE TABLE app_services (
    app_id         uuid PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    deployment_id  text NOT NULL DEFAULT '',
    -- The deployment of the spec before the current one: after an automatic rollback, the
    -- one that failed.
    previous_deployment_id text NOT NULL DEFAULT '',
    update_state   text NOT NULL DEFAULT '',
    update_message text NOT NULL DEFAULT '',
    desired        integer NOT NULL DEFAULT 0,
    -- tasks: the TaskStatus list, as protojson.
    tasks          jsonb NOT NULL DEFAULT '[]',
    reported_at    timestamptz NOT NULL DEFAULT now()
);

-- Per-replica metrics: raw samples, kept 24 h.
CREATE TABLE app_metrics (
    app_id       uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    task_id      text NOT NULL,
    slot         integer NOT NULL,
    sampled_at   timestamptz NOT NULL,
    cpu_percent  real NOT NULL,
    memory_bytes bigint NOT NULL,
    net_rx_bytes bigint NOT NULL,
    net_tx_bytes bigint NOT NULL,
    PRIMARY KEY (app_id, task_id, sampled_at)
);
CREATE INDEX app_metrics_sampled_idx ON app_metrics (sampled_at);

CREATE TABLE domains (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id             uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    hostname           text NOT NULL,
    method             smallint NOT NULL CHECK (method IN (1, 2)), -- 1 DNS TXT, 2 HTTP
    token              text NOT NULL,
    verified_at        timestamptz,
    is_primary         boolean NOT NULL DEFAULT false,
    certificate_state  text NOT NULL DEFAULT 'none'
                       CHECK (certificate_state IN ('none', 'pending', 'issued', 'failed')),
    cert_pem           text NOT NULL DEFAULT '',
    key_sealed         text NOT NULL DEFAULT '',
    cert_expires_at    timestamptz,
    error              text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX domains_hostname_key ON domains (hostname);
CREATE UNIQUE INDEX domains_primary_key ON domains (app_id) WHERE is_primary;

-- The control plane's ACME account, one per directory URL.
CREATE TABLE acme_accounts (
    directory_url text PRIMARY KEY,
    email         text NOT NULL DEFAULT '',
    key_sealed    text NOT NULL,
    registration  jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- HTTP-01 answers the edges serve while an order is open.
CREATE TABLE acme_challenges (
    token       text PRIMARY KEY,
    key_auth    text NOT NULL,
    hostname    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- What each edge node was last sent, so a change (or a new edge node) sends it again.
CREATE TABLE edge_nodes (
    node_id     uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    config_hash text NOT NULL,
    version     bigint NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
