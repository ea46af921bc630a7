-- Accounts, organizations, memberships, invitations, sessions, API tokens, platform settings
-- and the activity log: the tenancy core every later table hangs off.

CREATE TABLE users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name        text NOT NULL DEFAULT '',
    password_hash       text NOT NULL,
    platform_admin      boolean NOT NULL DEFAULT false,
    disabled_at         timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE organizations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    slug       text NOT NULL CHECK (slug ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug);

-- role: 1 viewer, 2 member, 3 admin, 4 owner (the numbers of the API's Role enum).
CREATE TABLE memberships (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            smallint NOT NULL CHECK (role BETWEEN 1 AND 4),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);
-- Exactly one owner per organization: at most one here, at least one kept by the code.
CREATE UNIQUE INDEX memberships_one_owner ON memberships (organization_id) WHERE role = 4;

CREATE TABLE invitations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (email = lower(email)),
    role            smallint NOT NULL CHECK (role BETWEEN 1 AND 3),
    token_hash      bytea NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
    invited_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    responded_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    responded_at    timestamptz
);
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
CREATE UNIQUE INDEX invitations_one_pending ON invitations (organization_id, email) WHERE state = 'pending';
CREATE INDEX invitations_organization_idx ON invitations (organization_id, created_at DESC);

-- A session is one sign-in: the family of every access and refresh token issued from it.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip            text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE access_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX access_tokens_session_id_idx ON access_tokens (session_id);

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role            smallint NOT NULL CHECK (role BETWEEN 1 AND 3),
    token_hash      bytea NOT NULL,
    prefix          text NOT NULL,
    created_by      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE UNIQUE INDEX api_tokens_token_hash_key ON api_tokens (token_hash);
CREATE INDEX api_tokens_organization_idx ON api_tokens (organization_id, created_at DESC);

CREATE TABLE platform_settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- The activity log outlives what it talks about: no foreign keys, so deleting an organization
-- or a user keeps its history for platform admins.
-- actor_kind: 1 user, 2 API token, 3 system (the numbers of the API's ActorKind enum).
CREATE TABLE activity_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid,
    actor_kind      smallint NOT NULL CHECK (actor_kind BETWEEN 1 AND 3),
    actor_user_id   uuid,
    actor_email     text NOT NULL DEFAULT '',
    actor_token_id  uuid,
    event_type      text NOT NULL,
    entity_type     text NOT NULL DEFAULT '',
    entity_id       text NOT NULL DEFAULT '',
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_events_organization_idx ON activity_events (organization_id, id DESC);
CREATE INDEX activity_events_actor_idx ON activity_events (actor_user_id, id DESC);
CREATE INDEX activity_events_entity_idx ON activity_events (entity_type, entity_id, id DESC);
