ALTER TABLE accounts DROP COLUMN merged_into;
DROP INDEX wechat_identities_nickname_lower;
DROP INDEX wechat_identities_created_id;
