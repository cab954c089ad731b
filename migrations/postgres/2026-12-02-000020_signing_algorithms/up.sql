-- Issue 11.1: each client chooses the algorithm of its access tokens
-- (RFC 9068 JWTs), as it already chooses its ID tokens'.
ALTER TABLE clients ADD COLUMN access_token_signing_alg TEXT NOT NULL DEFAULT 'RS256';
-- Issue 10.14: a rotated-in key is published before it signs. NULL (keys
-- made before this migration, and the first key of a deployment) signs at once.
ALTER TABLE signing_keys ADD COLUMN not_before_signing TIMESTAMP;
