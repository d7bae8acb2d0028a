-- People: users of the web UI, their recovery codes, setup links and
-- sessions (docs/decisions/0010). email is stored in lower case, so its
-- uniqueness holds whatever the case it was typed in. totp_secret is
-- sealed (sqlstore/seal.go); password_hash is argon2id; recovery codes,
-- setup tokens and session ids are kept as SHA-256 only.
CREATE TABLE users (
    id               TEXT COLLATE "C" PRIMARY KEY,
    email            TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    tenant           TEXT COLLATE "C" NOT NULL,
    role             TEXT NOT NULL,
    password_hash    TEXT NOT NULL DEFAULT '',
    totp_secret      TEXT NOT NULL DEFAULT '',
    totp_enabled     INTEGER NOT NULL DEFAULT 0,
    totp_last_step   BIGINT NOT NULL DEFAULT 0,
    failed_sign_ins  INTEGER NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX users_tenant ON users (tenant, email);

CREATE TABLE user_recovery_codes (
    user_id   TEXT COLLATE "C" NOT NULL,
    code_hash TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE user_setup_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX user_setup_tokens_user ON user_setup_tokens (user_id);

-- Sessions are rows, so every node sees a sign-out at once.
CREATE TABLE user_sessions (
    id_hash    TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);
