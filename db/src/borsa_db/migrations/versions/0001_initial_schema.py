"""Users, API keys and bot configurations: the shared schema contract (DESIGN.md section 4).

The SQL is the contract's text, statement by statement; the gateway and the connectors code against it.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Explicit SQL, one statement per string (asyncpg prepares each statement, so no multi-statement strings).
UPGRADE = (
    "CREATE EXTENSION IF NOT EXISTS pgcrypto  -- gen_random_uuid()",
    """
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    password_hash text NOT NULL,           -- argon2 hash, never the password
    created_at    timestamptz NOT NULL DEFAULT now()
)""",
    "CREATE UNIQUE INDEX users_email_key ON users (lower(email))",
    """
CREATE TABLE api_keys (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    exchange_name      text NOT NULL CHECK (exchange_name ~ '^[a-z0-9]+$'),
    label              text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    mode               text NOT NULL CHECK (mode IN ('live', 'sandbox', 'paper')),
    sealed_credentials bytea,              -- PyNaCl SealedBox ciphertext of the JSON credentials; NULL for paper
    key_hint           text NOT NULL DEFAULT '',  -- first four and last four characters of the API key, '' for paper
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    CHECK ((mode = 'paper') = (sealed_credentials IS NULL)),
    UNIQUE (id, exchange_name)             -- target of bot_configs' composite foreign key
)""",
    "CREATE INDEX api_keys_user ON api_keys (user_id)",
    """
CREATE TABLE bot_configs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_key_id    uuid NOT NULL,
    exchange_name text NOT NULL,
    symbol        text NOT NULL,           -- unified, BTC/USD
    market_id     text NOT NULL,           -- native, XXBTZUSD
    strategy      text NOT NULL,
    params        jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'stopped' CHECK (status IN ('stopped', 'running', 'paused')),
    status_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The bot's exchange is its key's exchange, enforced by the database:
    FOREIGN KEY (api_key_id, exchange_name) REFERENCES api_keys (id, exchange_name) ON UPDATE RESTRICT ON DELETE CASCADE
)""",
    "CREATE INDEX bot_configs_user ON bot_configs (user_id)",
)

# pgcrypto stays: it may have been there before this revision, and other schemas in the database may use it.
DOWNGRADE = (
    "DROP TABLE bot_configs",
    "DROP TABLE api_keys",
    "DROP TABLE users",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
