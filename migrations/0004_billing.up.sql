-- Billing: a prepaid wallet per organization with its append-only ledger, what runs and is
-- billable, price history (plan prices and per-resource overrides), and the hourly usage
-- ledger whose unique key makes metering exactly-once. Amounts are integer minor units.
--
-- Money records outlive what they are about: these tables have no foreign key to
-- organizations or apps, so deleting an organization or an app never deletes (or is blocked
-- by) its ledger.

-- append_only refuses to change or delete a ledger row: a correction is a new row.
CREATE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TABLE wallets (
    organization_id uuid PRIMARY KEY,
    -- The wallet's currency is fixed when it is created (first top-up or first billable run).
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- balance always equals the sum of the wallet's ledger (store.CheckWalletsBalance).
    balance         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallet_transactions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES wallets (organization_id) ON DELETE RESTRICT,
    kind            text NOT NULL CHECK (kind IN ('credit', 'debit', 'refund', 'adjustment')),
    -- amount is signed: what the row adds to the balance.
    amount          bigint NOT NULL CHECK (amount <> 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance_after   bigint NOT NULL,
    reason          text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    -- actor: who caused it, e.g. 'user:<uuid>', 'stripe', 'system:metering'.
    actor           text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    -- reference: one per source event ('stripe:evt_…', 'usage:<first usage charge id>',
    -- 'admin:<uuid>'), so the same top-up or charge can never be applied twice.
    reference       text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE kind
        WHEN 'credit' THEN amount > 0
        WHEN 'refund' THEN amount > 0 AND reason <> ''
        WHEN 'debit' THEN amount < 0
        ELSE reason <> '' END)
);
CREATE UNIQUE INDEX wallet_transactions_reference_key ON wallet_transactions (reference);
CREATE INDEX wallet_transactions_organization_idx ON wallet_transactions (organization_id, id);
CREATE TRIGGER wallet_transactions_append_only BEFORE UPDATE OR DELETE ON wallet_transactions
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();
CREATE TRIGGER wallet_transactions_no_truncate BEFORE TRUNCATE ON wallet_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();

-- plan_prices is each plan's price history; the price of a period is the one in force at
-- its start. A plan's first price is in force from -infinity; a change from when it is made.
CREATE TABLE plan_prices (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id        uuid NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    price_per_hour bigint NOT NULL CHECK (price_per_hour >= 0),
    effective_from timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_prices_plan_idx ON plan_prices (plan_id, effective_from DESC, id DESC);
INSERT INTO plan_prices (plan_id, price_per_hour, effective_from)
    SELECT id, price_per_hour, '-infinity' FROM plans;

CREATE FUNCTION plan_prices_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO plan_prices (plan_id, price_per_hour, effective_from)
            VALUES (NEW.id, NEW.price_per_hour, '-infinity');
    ELSIF NEW.price_per_hour IS DISTINCT FROM OLD.price_per_hour THEN
        INSERT INTO plan_prices (plan_id, price_per_hour, effective_from)
            VALUES (NEW.id, NEW.price_per_hour, now());
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER plans_price_history AFTER INSERT OR UPDATE OF price_per_hour ON plans
    FOR EACH ROW EXECUTE FUNCTION plan_prices_record();

-- price_overrides is the history of admins' per-resource prices; the latest row in force at
-- a period's start wins, and a NULL unit_price ends the override (the plan price applies).
CREATE TABLE price_overrides (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_type  text NOT NULL CHECK (resource_type IN ('app', 'cluster')),
    resource_id    uuid NOT NULL,
    unit_price     bigint CHECK (unit_price >= 0),
    effective_from timestamptz NOT NULL,
    set_by         text NOT NULL CHECK (length(set_by) BETWEEN 1 AND 200),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_overrides_resource_idx ON price_overrides (resource_type, resource_id, effective_from DESC, id DESC);
CREATE TRIGGER price_overrides_append_only BEFORE UPDATE OR DELETE ON price_overrides
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();

-- billable_runs are the intervals during which a resource ran at a quantity (replicas);
-- at most one is open (ended_at NULL) per resource. Times are whole seconds.
CREATE TABLE billable_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    resource_type   text NOT NULL CHECK (resource_type IN ('app', 'cluster')),
    resource_id     uuid NOT NULL,
    -- plan_id prices the run from plan_prices; NULL for resources priced by unit_price alone.
    plan_id         uuid REFERENCES plans (id) ON DELETE RESTRICT,
    quantity        integer NOT NULL CHECK (quantity > 0),
    -- unit_price: minor units per unit-hour when the run began (see package billing for
    -- how it and the price histories combine).
    unit_price      bigint NOT NULL CHECK (unit_price >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    started_at      timestamptz NOT NULL CHECK (started_at = date_trunc('second', started_at)),
    ended_at        timestamptz CHECK (ended_at > started_at AND ended_at = date_trunc('second', ended_at))
);
CREATE UNIQUE INDEX billable_runs_open_key ON billable_runs (resource_type, resource_id) WHERE ended_at IS NULL;
CREATE INDEX billable_runs_resource_idx ON billable_runs (resource_type, resource_id, started_at);
CREATE INDEX billable_runs_ended_idx ON billable_runs (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX billable_runs_open_started_idx ON billable_runs (started_at) WHERE ended_at IS NULL;

-- usage_charges is the usage ledger: one row per (resource, hour) it ran in, written with
-- the wallet debit in one transaction (one debit per organization and transaction, whose
-- reference is 'usage:<id of its first charge>'); the unique key makes metering exactly-once.
CREATE TABLE usage_charges (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    resource_type   text NOT NULL CHECK (resource_type IN ('app', 'cluster')),
    resource_id     uuid NOT NULL,
    period_start    timestamptz NOT NULL CHECK (extract(epoch FROM period_start) % 3600 = 0),
    period_end      timestamptz NOT NULL CHECK (period_end = period_start + interval '1 hour'),
    -- unit_seconds: quantity × seconds run in the period (replica-seconds).
    unit_seconds    bigint NOT NULL CHECK (unit_seconds > 0),
    -- unit_price: the price per unit-hour charged (the latest run's, if the period had two).
    unit_price      bigint NOT NULL CHECK (unit_price >= 0),
    amount          bigint NOT NULL CHECK (amount >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX usage_charges_resource_period_key ON usage_charges (resource_type, resource_id, period_start);
CREATE INDEX usage_charges_organization_idx ON usage_charges (organization_id, period_start);
CREATE TRIGGER usage_charges_append_only BEFORE UPDATE OR DELETE ON usage_charges
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();
CREATE TRIGGER usage_charges_no_truncate BEFORE TRUNCATE ON usage_charges
    FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();

-- metered_periods are the hours being metered (completed_at NULL) or metered: no run may be
-- recorded inside them any more, and once completed every resource that ran in them is
-- charged. Closing a period takes the 'billing runs' advisory lock exclusively, recording a
-- run change takes it shared (see store.ClosePeriod).
CREATE TABLE metered_periods (
    period_start timestamptz PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
