DROP INDEX audit_events_outcome_seq;
DROP INDEX audit_events_occurred_seq;
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_account_id ON audit_events (account_id);
DROP INDEX audit_events_category_occurred;
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
ALTER TABLE audit_events DROP COLUMN pruned_at;
ALTER TABLE audit_events DROP COLUMN content_hash;
ALTER TABLE audit_events DROP COLUMN content_salt;
ALTER TABLE audit_events DROP COLUMN link_version;
