-- A node's latest report is kept as the agent sent it (protobuf), not as JSON: at
-- thousands of nodes, encoding every heartbeat as JSON in the control plane and parsing it
-- into jsonb in Postgres was a large share of both's work. Nothing queries inside it; the
-- control plane decodes it. Reports stored before are dropped: the next heartbeat, seconds
-- away, replaces them.
ALTER TABLE nodes ALTER COLUMN last_report TYPE bytea USING NULL;
