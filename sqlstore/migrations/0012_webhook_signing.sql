-- A webhook signs either with a shared secret (hmac-sha256, Standard
-- Webhooks v1: every webhook so far) or with an ed25519 private key
-- (ed25519, v1a). The keys themselves stay in webhook_secrets, sealed:
-- "whsec_" secrets and "whsk_" private keys side by side, so rotation,
-- grace and purging work the same for both.
ALTER TABLE webhooks ADD COLUMN signing_algorithm TEXT NOT NULL DEFAULT 'hmac-sha256';
