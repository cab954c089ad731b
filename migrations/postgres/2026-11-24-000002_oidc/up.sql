-- The OpenID Provider: clients, signing keys, codes, grants, tokens, consents.
-- Secrets and tokens are stored as SHA-256 (hex) or sealed with the master key.

CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- SHA-256 of the generated 256-bit secret; NULL for public clients
    secret_hash TEXT,
    is_public BOOLEAN NOT NULL,
    first_party BOOLEAN NOT NULL,
    -- JSON arrays of strings
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    id_token_signing_alg TEXT NOT NULL,
    -- issue refresh tokens even without the offline_access scope
    always_issue_refresh_token BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    -- PKCS#8 PEM sealed with the master key
    private_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- set when a newer key of the same algorithm took over
    retired_at TIMESTAMP,
    -- after this the key has signed nothing still valid: drop from JWKS
    publish_until TIMESTAMP
);

-- One authorization: everything issued from one code (or one client
-- credentials request) hangs off it, so revoking it revokes them all.
CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    auth_time TIMESTAMP,
    amr TEXT NOT NULL,
    sid TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX grants_account_client ON grants (account_id, client_id);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    consumed_at TIMESTAMP
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- set when this token was exchanged for a new one
    rotated_at TIMESTAMP
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);

-- Individually revoked access tokens (RFC 7009), kept until they expire.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE consents (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    -- space-separated scopes the person agreed to
    scope TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
