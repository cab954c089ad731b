DROP TABLE host_codes;
ALTER TABLE clients DROP COLUMN trusted_host_client;
ALTER TABLE clients DROP COLUMN host_app;
