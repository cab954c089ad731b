DROP TABLE audit_checkpoints;
DROP TABLE audit_keys;
DROP TABLE audit_pending;
