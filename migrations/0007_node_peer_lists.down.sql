ALTER TABLE nodes DROP COLUMN reachable_peers, DROP COLUMN unreachable_peers;
