DROP INDEX audit_events_request_id;
DROP INDEX audit_events_ip_seq;
DROP INDEX audit_events_client_seq;
DROP INDEX audit_events_actor_seq;
DROP INDEX audit_events_account_seq;
DROP INDEX audit_events_action_seq;
