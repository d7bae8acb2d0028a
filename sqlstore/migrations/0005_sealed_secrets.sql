-- Secrets are sealed under the master key from now on (sqlstore/seal.go
-- seals the values already stored when the store opens). The token signing
-- key is derived from the master key and never stored: the one kept here
-- by earlier versions goes, and with it every token it signed.
DELETE FROM settings WHERE name = 'token_key';
