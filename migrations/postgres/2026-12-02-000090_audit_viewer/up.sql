-- Indexes for the auditor's log viewer and export (issue 9 §2, §3).
-- Every filter is an equality (or a prefix) on one column, read newest
-- first: a (column, seq) index hands out one page as an index range walked
-- backwards, with no sort and no COUNT(*), at 10,000,000 events.
-- (category, seq) exists already (console search); (occurred_at) serves
-- time ranges; account_id gets seq added so a busy account's page is a
-- range too.
CREATE INDEX audit_events_action_seq ON audit_events (action, seq);
CREATE INDEX audit_events_account_seq ON audit_events (account_id, seq);
CREATE INDEX audit_events_actor_seq ON audit_events (actor, seq);
CREATE INDEX audit_events_client_seq ON audit_events (client_id, seq);
CREATE INDEX audit_events_ip_seq ON audit_events (ip, seq);
CREATE INDEX audit_events_request_id ON audit_events (request_id);
