"""The migrations create exactly the schema contract of users, keys and bots, and the database enforces its rules;
the order tables of revision 0002 make every order and fill write idempotent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

pytestmark = pytest.mark.integration

# (column, type, nullable, default) per table, as information_schema reports the contract's DDL.
COLUMNS = {
    "users": [
        ("id", "uuid", "NO", "gen_random_uuid()"),
        ("email", "text", "NO", None),
        ("password_hash", "text", "NO", None),
        ("created_at", "timestamp with time zone", "NO", "now()"),
    ],
    "api_keys": [
        ("id", "uuid", "NO", "gen_random_uuid()"),
        ("user_id", "uuid", "NO", None),
        ("exchange_name", "text", "NO", None),
        ("label", "text", "NO", None),
        ("mode", "text", "NO", None),
        ("sealed_credentials", "bytea", "YES", None),
        ("key_hint", "text", "NO", "''::text"),
        ("status", "text", "NO", "'active'::text"),
        ("created_at", "timestamp with time zone", "NO", "now()"),
        ("revoked_at", "timestamp with time zone", "YES", None),
        ("paper_balances", "jsonb", "YES", None),
    ],
    "bot_configs": [
        ("id", "uuid", "NO", "gen_random_uuid()"),
        ("user_id", "uuid", "NO", None),
        ("api_key_id", "uuid", "NO", None),
        ("exchange_name", "text", "NO", None),
        ("symbol", "text", "NO", None),
        ("market_id", "text", "NO", None),
        ("strategy", "text", "NO", None),
        ("params", "jsonb", "NO", None),
        ("status", "text", "NO", "'stopped'::text"),
        ("status_reason", "text", "YES", None),
        ("created_at", "timestamp with time zone", "NO", "now()"),
        ("updated_at", "timestamp with time zone", "NO", "now()"),
    ],
}

# Postgres names the contract's unnamed constraints; code that catches a violation may rely on these names.
CONSTRAINTS = {
    ("users", "users_pkey", "PRIMARY KEY (id)"),
    ("api_keys", "api_keys_pkey", "PRIMARY KEY (id)"),
    ("api_keys", "api_keys_user_id_fkey", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"),
    ("api_keys", "api_keys_exchange_name_check", "CHECK ((exchange_name ~ '^[a-z0-9]+$'::text))"),
    ("api_keys", "api_keys_label_check", "CHECK (((length(label) >= 1) AND (length(label) <= 100)))"),
    ("api_keys", "api_keys_mode_check", "CHECK ((mode = ANY (ARRAY['live'::text, 'sandbox'::text, 'paper'::text])))"),
    ("api_keys", "api_keys_status_check", "CHECK ((status = ANY (ARRAY['active'::text, 'revoked'::text])))"),
    ("api_keys", "api_keys_check", "CHECK (((mode = 'paper'::text) = (sealed_credentials IS NULL)))"),
    ("api_keys", "api_keys_id_exchange_name_key", "UNIQUE (id, exchange_name)"),
    ("bot_configs", "bot_configs_pkey", "PRIMARY KEY (id)"),
    ("bot_configs", "bot_configs_user_id_fkey", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"),
    (
        "bot_configs",
        "bot_configs_status_check",
        "CHECK ((status = ANY (ARRAY['stopped'::text, 'running'::text, 'paused'::text])))",
    ),
    (
        "bot_configs",
        "bot_configs_api_key_id_exchange_name_fkey",
        "FOREIGN KEY (api_key_id, exchange_name) REFERENCES api_keys(id, exchange_name) "
        "ON UPDATE RESTRICT ON DELETE CASCADE",
    ),
}

INDEXES = {
    ("users", "users_email_key", "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email))"),
    ("api_keys", "api_keys_user", "CREATE INDEX api_keys_user ON public.api_keys USING btree (user_id)"),
    ("bot_configs", "bot_configs_user", "CREATE INDEX bot_configs_user ON public.bot_configs USING btree (user_id)"),
}


@pytest.fixture
async def db(migrated_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(migrated_database)
    try:
        yield conn
    finally:
        await conn.close()


async def test_migration_creates_every_table_column_constraint_and_index(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY($1::text[]) ORDER BY table_name, ordinal_position",
        list(COLUMNS),
    )
    columns: dict[str, list[tuple[str, ...]]] = {}
    for row in rows:
        columns.setdefault(row["table_name"], []).append(tuple(row.values())[1:])
    assert columns == COLUMNS

    constraints = await db.fetch(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text = ANY($1::text[])",
        list(COLUMNS),
    )
    assert {tuple(row.values()) for row in constraints} == CONSTRAINTS

    indexes = await db.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace)"
        " AND tablename = ANY($1::text[])",
        list(COLUMNS),
    )
    assert {tuple(row.values()) for row in indexes} == INDEXES
    assert await db.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'") == 1


async def add_user(db: asyncpg.Connection, email: str = "ada@example.com") -> str:
    return await db.fetchval("INSERT INTO users (email, password_hash) VALUES ($1, 'argon2') RETURNING id", email)


async def add_key(
    db: asyncpg.Connection, user_id: str, exchange: str = "kraken", mode: str = "live", sealed: bytes | None = b"box"
) -> str:
    return await db.fetchval(
        "INSERT INTO api_keys (user_id, exchange_name, label, mode, sealed_credentials)"
        " VALUES ($1, $2, 'main', $3, $4) RETURNING id",
        user_id,
        exchange,
        mode,
        sealed,
    )


async def add_bot(db: asyncpg.Connection, user_id: str, key_id: str, exchange: str) -> str:
    return await db.fetchval(
        "INSERT INTO bot_configs (user_id, api_key_id, exchange_name, symbol, market_id, strategy, params)"
        " VALUES ($1, $2, $3, 'BTC/USD', 'XXBTZUSD', 'grid', $4::jsonb) RETURNING id",
        user_id,
        key_id,
        exchange,
        json.dumps({"levels": 5}),
    )


async def test_a_bot_is_on_its_keys_exchange(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    key = await add_key(db, user, "kraken")

    with pytest.raises(asyncpg.ForeignKeyViolationError, match="bot_configs_api_key_id_exchange_name_fkey"):
        await add_bot(db, user, key, "binance")
    bot = await add_bot(db, user, key, "kraken")

    with pytest.raises(asyncpg.ForeignKeyViolationError, match="bot_configs_api_key_id_exchange_name_fkey"):
        await db.execute("UPDATE api_keys SET exchange_name = 'binance' WHERE id = $1", key)
    assert await db.fetchval("SELECT exchange_name FROM api_keys WHERE id = $1", key) == "kraken"

    await db.execute("DELETE FROM api_keys WHERE id = $1", key)
    assert await db.fetchval("SELECT count(*) FROM bot_configs WHERE id = $1", bot) == 0


async def test_a_key_without_bots_may_change_exchange(db: asyncpg.Connection) -> None:
    key = await add_key(db, await add_user(db), "kraken")
    await db.execute("UPDATE api_keys SET exchange_name = 'binance' WHERE id = $1", key)


async def test_only_paper_keys_have_no_sealed_credentials(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    await add_key(db, user, mode="paper", sealed=None)
    await add_key(db, user, mode="live", sealed=b"box")
    await add_key(db, user, mode="sandbox", sealed=b"box")
    for mode, sealed in (("paper", b"box"), ("live", None), ("sandbox", None)):
        with pytest.raises(asyncpg.CheckViolationError, match="api_keys_check"):
            await add_key(db, user, mode=mode, sealed=sealed)


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("exchange_name", "Kraken", "api_keys_exchange_name_check"),
        ("exchange_name", "kraken-eu", "api_keys_exchange_name_check"),
        ("label", "", "api_keys_label_check"),
        ("label", "x" * 101, "api_keys_label_check"),
        ("mode", "margin", "api_keys_mode_check"),
        ("status", "deleted", "api_keys_status_check"),
    ],
)
async def test_key_columns_are_checked(db: asyncpg.Connection, column: str, value: str, constraint: str) -> None:
    row = {"user_id": await add_user(db), "exchange_name": "kraken", "label": "main", "mode": "live"}
    row["sealed_credentials"] = b"box"
    row[column] = value
    with pytest.raises(asyncpg.CheckViolationError, match=constraint):
        await db.execute(
            f"INSERT INTO api_keys ({', '.join(row)}) VALUES ({', '.join(f'${i}' for i in range(1, len(row) + 1))})",
            *row.values(),
        )


async def test_emails_are_unique_ignoring_case(db: asyncpg.Connection) -> None:
    await add_user(db, "Ada@Example.com")
    with pytest.raises(asyncpg.UniqueViolationError, match="users_email_key"):
        await add_user(db, "ada@example.COM")
    await add_user(db, "grace@example.com")


async def test_deleting_a_user_deletes_their_keys_and_bots(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    await add_bot(db, user, await add_key(db, user), "kraken")
    await db.execute("DELETE FROM users WHERE id = $1", user)
    assert await db.fetchval("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM bot_configs)") == 0


async def test_defaults(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    key = await db.fetchrow("SELECT * FROM api_keys WHERE id = $1", await add_key(db, user, mode="paper", sealed=None))
    assert (key["status"], key["key_hint"], key["revoked_at"]) == ("active", "", None)
    bot = await db.fetchrow("SELECT * FROM bot_configs WHERE id = $1", await add_bot(db, user, key["id"], "kraken"))
    assert (bot["status"], bot["status_reason"]) == ("stopped", None)
    assert bot["created_at"] == bot["updated_at"]


async def test_an_order_is_recorded_once_per_exchange_account_and_client_id(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    key = await add_key(db, user, "binance")
    insert = (
        "INSERT INTO connector_orders (exchange_name, account_id, client_order_id, sent_client_order_id, symbol,"
        " market_id, side, type, amount, claimed_by) VALUES ('binance', $1, $2, $3, 'BTC/USDT', 'BTCUSDT', 'buy',"
        " 'market', 1, 'test') ON CONFLICT DO NOTHING RETURNING client_order_id"
    )
    assert await db.fetchval(insert, key, "bot-1", "bot-1") == "bot-1"
    assert await db.fetchval(insert, key, "bot-1", "bot-1") is None  # the same create: nothing new
    with pytest.raises(asyncpg.UniqueViolationError):  # two ids fitted to the same exchange id
        await db.execute(insert.replace(" ON CONFLICT DO NOTHING RETURNING client_order_id", ""), key, "b2", "bot-1")
    fill = (
        "INSERT INTO connector_fills (exchange_name, account_id, trade_id, order_id, symbol, side, price, amount,"
        " timestamp_ms) VALUES ('binance', $1, 't1', 'o1', 'BTC/USDT', 'buy', 1, 1, 0) ON CONFLICT DO NOTHING"
    )
    await db.execute(fill, key)
    await db.execute(fill, key)
    assert await db.fetchval("SELECT count(*) FROM connector_fills") == 1


async def test_paper_balances_never_go_negative(db: asyncpg.Connection) -> None:
    user = await add_user(db)
    key = await add_key(db, user, "kraken", mode="paper", sealed=None)
    await db.execute("INSERT INTO paper_balances VALUES ($1, 'USD', 10, 0)", key)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE paper_balances SET free = free - 11 WHERE account_id = $1", key)
