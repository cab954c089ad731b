-- WeChat federation: apps, identities (one per person per Open Platform),
-- their per-app OpenIDs, the shared app access tokens, login states.

CREATE TABLE wechat_apps (
    appid TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('miniprogram', 'official_account', 'website', 'mobile_app')),
    name TEXT NOT NULL,
    -- the Open Platform account the app is bound to; NULL: no UnionIDs
    open_platform TEXT,
    redirect_domain TEXT,
    -- AppSecret sealed with the master key
    secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE wechat_identities (
    id TEXT PRIMARY KEY NOT NULL,
    -- 'op:<open platform>' for an identity known by UnionID, or
    -- 'app:<appid>' for one known only by an OpenID of an unbound app
    platform_key TEXT NOT NULL,
    open_platform TEXT,
    unionid TEXT,
    account_id TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    nickname TEXT,
    avatar_url TEXT,
    -- a phone number WeChat verified (getuserphonenumber), E.164
    phone TEXT,
    phone_verified_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- one person per UnionID per Open Platform
    UNIQUE (open_platform, unionid),
    -- an account links to at most one identity per platform
    UNIQUE (account_id, platform_key)
);
CREATE INDEX wechat_identities_account_id ON wechat_identities (account_id);

CREATE TABLE wechat_openids (
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES wechat_identities(id) ON DELETE CASCADE,
    -- the latest session_key, sealed (mini-programs only)
    session_key TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    PRIMARY KEY (appid, openid)
);
CREATE INDEX wechat_openids_identity_id ON wechat_openids (identity_id);

-- App access tokens (stable_token), shared by every instance.
CREATE TABLE wechat_app_tokens (
    appid TEXT PRIMARY KEY NOT NULL,
    access_token TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The `state` of a WeChat browser login: single use, bound to the browser.
CREATE TABLE wechat_login_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    appid TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- A WeChat login waiting for the person to prove an account (bind policy).
CREATE TABLE wechat_pending_binds (
    token_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES wechat_identities(id) ON DELETE CASCADE,
    return_to TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- A client of a mini-program or app names its WeChat app (its OpenID is released).
ALTER TABLE clients ADD COLUMN wechat_appid TEXT;
