ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
DROP TABLE client_hosted_apps;
