"""borsa_db.migrate from an empty database: repeatable, concurrent, reversible, and it creates the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from borsa_db import (
    DatabaseUnavailable,
    asyncpg_dsn,
    current_revision,
    downgrade,
    ensure_database,
    head_revision,
    migrate,
)
from borsa_testing.processes import free_port

Exists = Callable[[str], Awaitable[bool]]
TABLES = {
    "users",
    "api_keys",
    "bot_configs",
    "connector_orders",
    "connector_fills",
    "paper_balances",
    "paper_orders",
    "paper_trades",
    "bot_runners",
    "bot_leases",
    "bot_state",
    "bot_intents",
    "bot_fills",
    "report_orders",
    "report_fills",
    "report_positions",
    "report_daily",
    "login_failures",
}


async def schema(dsn: str) -> dict[str, list[tuple]]:
    """What the migration made: tables, columns, constraints and indexes of the public schema."""
    conn = await asyncpg.connect(dsn)
    try:
        queries = {
            "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'",
            "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace",
            "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        }
        return {name: sorted(tuple(row.values()) for row in await conn.fetch(sql)) for name, sql in queries.items()}
    finally:
        await conn.close()


def tables(snapshot: dict[str, list[tuple]]) -> set[str]:
    return {column[0] for column in snapshot["columns"]} - {"alembic_version"}


@pytest.mark.integration
async def test_empty_database_is_at_no_revision(fresh_database: str) -> None:
    assert await current_revision(fresh_database) is None


@pytest.mark.integration
async def test_migrating_twice_is_a_no_op(fresh_database: str) -> None:
    await migrate(fresh_database)
    first = await schema(fresh_database)
    assert tables(first) == TABLES
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("INSERT INTO users (email, password_hash) VALUES ('ada@example.com', 'argon2')")
        await migrate(fresh_database)
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
    finally:
        await conn.close()
    assert await schema(fresh_database) == first
    assert await current_revision(fresh_database) == head_revision() == "0005"


@pytest.mark.integration
async def test_concurrent_migrations_all_succeed(fresh_database: str) -> None:
    await asyncio.gather(*(migrate(fresh_database) for _ in range(4)))
    assert tables(await schema(fresh_database)) == TABLES
    assert await current_revision(fresh_database) == head_revision()


@pytest.mark.integration
async def test_concurrent_migrations_of_a_missing_database_all_succeed(
    database_exists: Exists, missing_database: str
) -> None:
    await asyncio.gather(*(migrate(missing_database) for _ in range(4)))
    assert await database_exists(missing_database)
    assert await current_revision(missing_database) == head_revision()


@pytest.mark.integration
async def test_downgrade_to_base_then_upgrade_again(fresh_database: str) -> None:
    await migrate(fresh_database)
    migrated = await schema(fresh_database)

    await downgrade(fresh_database, "base")
    assert tables(await schema(fresh_database)) == set()
    assert await current_revision(fresh_database) is None

    await migrate(fresh_database)
    assert await schema(fresh_database) == migrated


@pytest.mark.integration
async def test_migrate_creates_a_missing_database(database_exists: Exists, missing_database: str) -> None:
    assert not await database_exists(missing_database)
    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL"):
        await current_revision(missing_database)

    await migrate(missing_database)
    assert await database_exists(missing_database)
    assert await current_revision(missing_database) == head_revision()
    assert await ensure_database(missing_database) is False


@pytest.mark.integration
async def test_migrating_to_an_unknown_revision_changes_nothing(fresh_database: str) -> None:
    with pytest.raises(Exception, match="nonexistent"):
        await migrate(fresh_database, "nonexistent")
    assert tables(await schema(fresh_database)) == set()


async def test_a_server_that_does_not_answer_is_named_by_its_variable() -> None:
    url = f"postgresql://borsa:hunter2@127.0.0.1:{free_port()}/borsa"
    with pytest.raises(DatabaseUnavailable, match=r"DATABASE_URL=postgresql://borsa:\*+@127\.0\.0\.1") as caught:
        await migrate(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "dsn"),
    [
        ("postgresql://borsa@127.0.0.1:5432/borsa", "postgresql://borsa@127.0.0.1:5432/borsa"),
        ("postgres://borsa@db/borsa?sslmode=require", "postgresql://borsa@db/borsa?sslmode=require"),
        ("postgresql+asyncpg://borsa:pw@db/borsa", "postgresql://borsa:pw@db/borsa"),
    ],
)
def test_asyncpg_dsn(url: str, dsn: str) -> None:
    assert asyncpg_dsn(url) == dsn


@pytest.mark.parametrize("url", ["mysql://borsa@db/borsa", "127.0.0.1:5432", ""])
def test_a_url_that_is_not_postgres_is_refused(url: str) -> None:
    with pytest.raises(DatabaseUnavailable, match="DATABASE_URL"):
        asyncpg_dsn(url)
