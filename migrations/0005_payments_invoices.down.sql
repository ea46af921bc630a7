DROP TRIGGER wallets_balance_changed ON wallets;
DROP FUNCTION wallets_notify_balance();
DELETE FROM deployments WHERE kind IN ('suspend', 'resume');
ALTER TABLE deployments DROP CONSTRAINT deployments_kind_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_kind_check
    CHECK (kind IN ('deploy', 'rollback', 'scale', 'restart', 'stop', 'start', 'delete'));
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE billing_accounts;
DROP TABLE payment_events;
DROP TABLE top_ups;
