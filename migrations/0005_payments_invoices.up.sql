-- Billing, continued: top-ups through a payment provider, each organization's balance state
-- (low-balance warning, grace, suspension) and monthly invoices. As in 0004, money records
-- have no foreign key to organizations: they outlive them.

-- top_ups are payments into a wallet through a payment provider's checkout page. The wallet
-- is credited once, when the provider confirms the payment, with reference
-- '<provider>:<external_id>'.
CREATE TABLE top_ups (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    provider        text NOT NULL CHECK (provider ~ '^[a-z]{2,20}$'),
    -- external_id is the provider's checkout id; set once the provider created it.
    external_id     text CHECK (length(external_id) BETWEEN 1 AND 200),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'expired', 'failed')),
    checkout_url    text NOT NULL DEFAULT '',
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    -- transaction_id is the wallet credit of a paid top-up.
    transaction_id  bigint REFERENCES wallet_transactions (id)
);
CREATE UNIQUE INDEX top_ups_external_key ON top_ups (provider, external_id);
CREATE INDEX top_ups_organization_idx ON top_ups (organization_id, created_at DESC);

-- payment_events are the provider webhook events handled: one row per event id, written in
-- the transaction that acts on it, so an event delivered twice acts once.
CREATE TABLE payment_events (
    provider    text NOT NULL,
    event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- billing_accounts hold an organization's balance rules and state (a row once any applies).
CREATE TABLE billing_accounts (
    organization_id       uuid PRIMARY KEY,
    -- low_balance_threshold overrides the platform's (minor units); NULL: the platform's.
    low_balance_threshold bigint CHECK (low_balance_threshold >= 0),
    -- low_balance_warned_at: when the organization was last warned; cleared when the balance
    -- is back over the threshold, so each fall under it warns once.
    low_balance_warned_at timestamptz,
    -- negative_since starts the grace period; cleared when the balance is back at 0 or more.
    negative_since        timestamptz,
    suspended_at          timestamptz,
    -- suspended_by: 'billing' (grace ran out; resumes by itself after a top-up) or 'admin'
    -- (resumes only by an admin).
    suspended_by          text CHECK (suspended_by IN ('billing', 'admin')),
    suspend_reason        text NOT NULL DEFAULT '' CHECK (length(suspend_reason) <= 500),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((suspended_at IS NULL) = (suspended_by IS NULL))
);

-- invoices are issued once per organization, month and currency when the month is over and
-- metered; a line per resource sums its usage charges of the month. Issued invoices never
-- change (the current month is shown as a draft computed on the fly).
CREATE TABLE invoices (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number            text NOT NULL UNIQUE,
    organization_id   uuid NOT NULL,
    organization_name text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL CHECK (period_end > period_start),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total             bigint NOT NULL CHECK (total >= 0),
    issued_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, period_start, currency)
);
CREATE TABLE invoice_lines (
    invoice_id    uuid NOT NULL REFERENCES invoices (id) ON DELETE RESTRICT,
    line          integer NOT NULL CHECK (line > 0),
    resource_type text NOT NULL CHECK (resource_type IN ('app', 'cluster')),
    resource_id   uuid NOT NULL,
    description   text NOT NULL,
    unit_seconds  bigint NOT NULL CHECK (unit_seconds > 0),
    amount        bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (invoice_id, line)
);
CREATE TRIGGER invoices_append_only BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();
CREATE TRIGGER invoice_lines_append_only BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();

-- The platform suspends and resumes an organization's apps with deployments of their own.
ALTER TABLE deployments DROP CONSTRAINT deployments_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_kind_check
    CHECK (kind IN ('deploy', 'rollback', 'scale', 'restart', 'stop', 'start', 'delete', 'suspend', 'resume'));

-- Every balance change notifies 'wallet_balance' with the organization's id, so the balance
-- rules (warning, grace, suspension, resumption) act on it at once (billing.Rules).
CREATE FUNCTION wallets_notify_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wallet_balance', NEW.organization_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER wallets_balance_changed AFTER INSERT OR UPDATE OF balance ON wallets
    FOR EACH ROW EXECUTE FUNCTION wallets_notify_balance();
