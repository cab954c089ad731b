-- Indexes for the admin console's account search and lists (issue 8).
-- Every lookup the console makes is an index range or point lookup: no
-- OFFSET, no COUNT(*) over accounts, at 1,000,000 accounts and more.

-- Prefix search on names: a range on the lower-cased name
-- (lower(display_name) >= q AND < q + U+10FFFF), which a plain b-tree on
-- the expression serves (usernames already have username_key).
CREATE INDEX accounts_display_name_lower ON accounts (lower(display_name));
-- Exact matches on email (case-insensitive) and phone (E.164).
CREATE INDEX accounts_email_lower ON accounts (lower(email));
CREATE INDEX accounts_phone ON accounts (phone);
-- Status filter in list order: a page of disabled accounts reads 50 index
-- entries, not the whole username index.
CREATE INDEX accounts_status_username ON accounts (status, username_key);
-- Role filter: all accounts with a role, without scanning accounts.
CREATE INDEX account_roles_role ON account_roles (role, account_id);
-- The external ids an admin pastes from a complaint: the UNIQUE
-- (open_platform, unionid) and PRIMARY KEY (appid, openid) indexes do not
-- serve a lookup by the second column alone.
CREATE INDEX wechat_identities_unionid ON wechat_identities (unionid);
CREATE INDEX wechat_openids_openid ON wechat_openids (openid);
-- "Recent admin actions" on the console home: the newest events of one
-- category without walking past millions of login events.
CREATE INDEX audit_events_category_seq ON audit_events (category, seq);
