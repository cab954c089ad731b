DROP TABLE backchannel_logouts;
DROP INDEX grants_sid;
ALTER TABLE grants DROP COLUMN tokens_issued;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
