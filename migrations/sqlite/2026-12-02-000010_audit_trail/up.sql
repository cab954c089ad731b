-- Group commit (issue 9 item 5): events are inserted here, in the
-- transaction of the change they record, without touching the chain head;
-- one chainer per database moves them into `audit_events` in batches,
-- ordered by `pending_id` (AUTOINCREMENT: never reused).
CREATE TABLE audit_pending (
    pending_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    category TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    actor TEXT,
    account_id TEXT,
    client_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    detail TEXT NOT NULL
);

-- The application never edits a pending row; the chainer only deletes the
-- rows it has just chained, in the same transaction.
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
BEGIN SELECT RAISE(ABORT, 'audit_pending is append-only'); END;

-- Signed checkpoints (issue 9 item 4): Ed25519 keys separate from the
-- master key. The private half is sealed with the master key (as signing
-- keys are); retired keys stay so that old checkpoints keep verifying.
CREATE TABLE audit_keys (
    id TEXT PRIMARY KEY NOT NULL,
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);

-- One row per signed checkpoint over (seq, head_hash); see docs/audit.md
-- for the signed byte string.
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY NOT NULL,
    head_hash TEXT NOT NULL,
    signed_at TIMESTAMP NOT NULL,
    prev_checkpoint_hash TEXT,
    key_id TEXT NOT NULL REFERENCES audit_keys (id),
    signature TEXT NOT NULL
);
