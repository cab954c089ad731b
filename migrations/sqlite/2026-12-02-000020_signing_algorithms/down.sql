ALTER TABLE signing_keys DROP COLUMN not_before_signing;
ALTER TABLE clients DROP COLUMN access_token_signing_alg;
