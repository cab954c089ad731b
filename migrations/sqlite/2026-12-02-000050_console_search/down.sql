DROP INDEX audit_events_category_seq;
DROP INDEX wechat_openids_openid;
DROP INDEX wechat_identities_unionid;
DROP INDEX account_roles_role;
DROP INDEX accounts_status_username;
DROP INDEX accounts_phone;
DROP INDEX accounts_email_lower;
DROP INDEX accounts_display_name_lower;
