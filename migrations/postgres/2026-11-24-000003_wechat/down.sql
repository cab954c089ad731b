ALTER TABLE clients DROP COLUMN wechat_appid;
DROP TABLE wechat_pending_binds;
DROP TABLE wechat_login_states;
DROP TABLE wechat_app_tokens;
DROP TABLE wechat_openids;
DROP TABLE wechat_identities;
DROP TABLE wechat_apps;
