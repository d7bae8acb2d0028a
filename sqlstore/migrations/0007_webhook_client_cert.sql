-- A webhook may present a TLS client certificate to its receiver (mutual
-- TLS). client_key is a credential: for now it is stored as given (PEM);
-- encryption at rest of this column follows. Both empty: no certificate.
ALTER TABLE webhooks ADD COLUMN client_certificate TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN client_key TEXT NOT NULL DEFAULT '';
