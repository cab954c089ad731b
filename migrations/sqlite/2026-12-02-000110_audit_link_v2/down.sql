DROP INDEX audit_events_outcome_seq;
DROP INDEX audit_events_occurred_seq;
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_account_id ON audit_events (account_id);
DROP INDEX audit_events_category_occurred;
DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
ALTER TABLE audit_events DROP COLUMN pruned_at;
ALTER TABLE audit_events DROP COLUMN content_hash;
ALTER TABLE audit_events DROP COLUMN content_salt;
ALTER TABLE audit_events DROP COLUMN link_version;
