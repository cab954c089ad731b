-- FinClip: host apps, mini-program clients that trust them, host-issued codes.

-- A host app's access tokens may ask for wx.login-shaped codes.
ALTER TABLE clients ADD COLUMN host_app BOOLEAN NOT NULL DEFAULT FALSE;
-- A mini-program client that accepts this host client's access tokens
-- in a token exchange (scheme 3).
ALTER TABLE clients ADD COLUMN trusted_host_client TEXT;

CREATE TABLE host_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    appid TEXT NOT NULL,
    host_client_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    consumed_at TIMESTAMP
);
CREATE INDEX host_codes_expires_at ON host_codes (expires_at);
