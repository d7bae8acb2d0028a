-- API clients with a life cycle, named per tenant (docs/decisions/0008).
--
-- Names become unique per tenant: the primary key is (tenant, name), with
-- tenant '' for platform clients. SQLite cannot change a primary key in
-- place, so the table is made anew, filled from the old one, and renamed;
-- the same statements run on PostgreSQL. Every row is kept, with its hash:
-- SHA-256 hashes of earlier versions still verify and are replaced by
-- argon2id at the client's next token exchange.
--
-- id is new for every client and carried by its tokens, so a token never
-- passes to a client made later under the same name. Rows from earlier
-- versions get an id made of their tenant and name; new rows get a random
-- one. secret_id is the lookup id embedded in secrets Herald makes ('' for
-- secrets without one). generation counts the secrets; the previous secret
-- keeps working until previous_expires_at. tokens_valid_from voids the
-- tokens issued before it (set when a disabled client is enabled again).
CREATE TABLE api_clients_v6 (
    tenant              TEXT COLLATE "C" NOT NULL,
    name                TEXT COLLATE "C" NOT NULL,
    id                  TEXT COLLATE "C" NOT NULL UNIQUE,
    role                TEXT NOT NULL,
    secret_hash         TEXT NOT NULL,
    secret_id           TEXT COLLATE "C" NOT NULL DEFAULT '',
    generation          INTEGER NOT NULL DEFAULT 1,
    secret_rotated_at   BIGINT,
    previous_hash       TEXT NOT NULL DEFAULT '',
    previous_secret_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    previous_expires_at BIGINT,
    disabled            INTEGER NOT NULL DEFAULT 0,
    tokens_valid_from   BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

INSERT INTO api_clients_v6 (tenant, name, id, role, secret_hash, created_at, updated_at)
SELECT tenant, name, 'cli_' || tenant || '.' || name, role, secret_hash, created_at, created_at
FROM api_clients;

DROP TABLE api_clients;
ALTER TABLE api_clients_v6 RENAME TO api_clients;

-- The token exchange looks clients up by name alone.
CREATE INDEX api_clients_name ON api_clients (name);

-- Tokens revoked before they expire; a row can go once its token expired.
CREATE TABLE revoked_tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- Token requests per key ("client:<name>", "address:<ip>") in fixed
-- windows, shared by the nodes; old windows are purged.
CREATE TABLE auth_requests (
    request_key  TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,
    requests     INTEGER NOT NULL,
    PRIMARY KEY (request_key, window_start)
);
CREATE INDEX auth_requests_window ON auth_requests (window_start);
