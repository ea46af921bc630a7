DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE billing_accounts;
DROP TABLE payment_events;
DROP TABLE top_ups;
