-- The peer lists of a node's reports are kept in their own columns, written only when they
-- change: agents leave them out of a report once the control plane holds them (by digest),
-- so the stored report no longer carries them. The health pass reads them from here for
-- nodes whose lists this replica does not hold. Node ids only (gossip's names for peers it
-- never met, their addresses, are not kept).
ALTER TABLE nodes
    ADD COLUMN reachable_peers uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN unreachable_peers uuid[] NOT NULL DEFAULT '{}';
