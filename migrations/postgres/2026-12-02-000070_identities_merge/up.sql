-- The console's WeChat identities (issue 8 §4).

-- The identity list, newest first, in keyset pages on (created_at, id).
CREATE INDEX wechat_identities_created_id ON wechat_identities (created_at, id);
-- Prefix search on nicknames (lower(nickname) >= q AND < q + U+10FFFF).
CREATE INDEX wechat_identities_nickname_lower ON wechat_identities (lower(nickname));
-- Search by AppID: the OpenID primary key (appid, openid) serves it;
-- search by Open Platform: the UNIQUE (open_platform, unionid) index.

-- An account merged into another: disabled, and pointing to the survivor
-- (its id, the `sub` of its tokens, is never reused).
ALTER TABLE accounts ADD COLUMN merged_into TEXT REFERENCES accounts(id);
