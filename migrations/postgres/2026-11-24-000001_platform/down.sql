DROP TABLE settings;
DROP TABLE audit_chain_head;
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE login_throttle;
DROP TABLE sessions;
DROP TABLE account_roles;
DROP TABLE accounts;
