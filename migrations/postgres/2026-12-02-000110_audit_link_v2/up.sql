-- Link version 2 of the audit chain (issue 9 items 3 and 6; docs/audit.md).
--
-- Version 1 rows are linked by HMAC-SHA256 under a key derived from the
-- master key, so only a holder of the master key can check a link. Version
-- 2 links are plain SHA-256, checkable by anyone; what makes them binding
-- is the Ed25519-signed checkpoints over the head. A v2 link covers the
-- row's metadata and `content_hash`, the SHA-256 of its content (reason,
-- ip, user agent, detail) with a random `content_salt`. So a row can
-- leave an export as metadata only ("omitted") and retention can remove
-- its content ("pruned": content and salt gone, `pruned_at` set) while the
-- chain still verifies. Rows chained before this migration keep version 1.
ALTER TABLE audit_events ADD COLUMN link_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN content_salt TEXT;
ALTER TABLE audit_events ADD COLUMN content_hash TEXT;
ALTER TABLE audit_events ADD COLUMN pruned_at TIMESTAMP;

-- Still append-only, with one exception: retention may strip a v2 row's
-- content (and nothing else), once.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    -- Nested: audit_pending shares this function and has no such columns.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_events' THEN
      IF OLD.link_version = 2 AND OLD.pruned_at IS NULL AND NEW.pruned_at IS NOT NULL
       AND NEW.seq = OLD.seq AND NEW.id = OLD.id AND NEW.occurred_at = OLD.occurred_at
       AND NEW.category = OLD.category AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
       AND NEW.actor IS NOT DISTINCT FROM OLD.actor
       AND NEW.account_id IS NOT DISTINCT FROM OLD.account_id
       AND NEW.client_id IS NOT DISTINCT FROM OLD.client_id
       AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id
       AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
       AND NEW.link_version = OLD.link_version AND NEW.content_hash = OLD.content_hash
       AND NEW.reason IS NULL AND NEW.ip IS NULL AND NEW.user_agent IS NULL
       AND NEW.content_salt IS NULL AND NEW.detail = '{}'
      THEN
        RETURN NEW;
      END IF;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

-- Retention reads one category's oldest unpruned rows.
CREATE INDEX audit_events_category_occurred ON audit_events (category, occurred_at)
    WHERE pruned_at IS NULL;

-- (account_id, seq) of migration 000090 serves every lookup by account;
-- the single-column index only cost the chainer a write per row.
DROP INDEX audit_events_account_id;

-- The log viewer over a time range pages by (occurred_at, seq), newest
-- first: one backward walk of this index, no sort of the period.
DROP INDEX audit_events_occurred_at;
CREATE INDEX audit_events_occurred_seq ON audit_events (occurred_at, seq);

-- `outcome` like the other filters: a (column, seq) range per page. (An
-- (outcome, occurred_at) index made SQLite sort every failure for a page.)
CREATE INDEX audit_events_outcome_seq ON audit_events (outcome, seq);
