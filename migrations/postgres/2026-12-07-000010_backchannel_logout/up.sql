-- OpenID Connect Back-Channel Logout 1.0 (issue 12 §4).

-- §2.2: where a client receives logout tokens, and whether it needs `sid`
-- in them (wxfed always sends `sid` and `sub`).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- Whether tokens were issued from a grant (its code was redeemed): a
-- client "has tokens from the session" named by the grant's `sid` only
-- then, not for a code it never redeemed.
ALTER TABLE grants ADD COLUMN tokens_issued BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX grants_sid ON grants (sid);

-- The outbox: one row per (client, ended session) still to be told,
-- written in the transaction that ends the session, so a logout survives
-- a crash; the delivery task deletes it once delivered or given up.
CREATE TABLE backchannel_logouts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    -- The `sub` the client was given (the account id) and the `sid`.
    subject TEXT NOT NULL,
    sid TEXT NOT NULL,
    -- What ended the session (logout, end_session, signed_out_everywhere…).
    cause TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- Attempts claimed so far; claiming moves next_attempt_at past the
    -- delivery timeout, so a claim held by a dead process lapses.
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT
);
CREATE INDEX backchannel_logouts_due ON backchannel_logouts (next_attempt_at);
