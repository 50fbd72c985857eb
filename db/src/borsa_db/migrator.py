"""Apply Borsa's migrations to the database that `DATABASE_URL` names: created when missing, one migrator at a time."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from borsa_db.connect import asyncpg_dsn, connect, ensure_database

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: Postgres scopes advisory locks to one database, so migrations of other databases never wait.
LOCK_KEY = 0x626F727361  # "borsa"


def alembic_config() -> Config:
    """Alembic's configuration, built in code: the scripts live in the package, no alembic.ini anywhere."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "borsa_db ships at least one revision"
    return head


async def _on_connection(database_url: str, work: Callable[[Connection], Any]) -> Any:
    # SQLAlchemy drives asyncpg, but asyncpg opens the connection: the DSN means exactly what it means to
    # every other asyncpg user in Borsa (sslmode, unix sockets, …), with no URL translation to drift.
    dsn = asyncpg_dsn(database_url)
    engine = create_async_engine("postgresql+asyncpg://", async_creator=partial(connect, dsn), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _locked(action: Callable[[Config], None], connection: Connection) -> None:
    """Run an Alembic command in one transaction, holding the migration lock until it commits.

    A second migrator waits here, then finds the first one's work committed and has nothing left to do.
    Postgres DDL is transactional, so a failed migration leaves no half-made schema behind.
    """
    with connection.begin():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)


async def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database up to `revision` (default: the newest), creating the database first if needed.

    Safe to run again and from several processes at once.
    """
    await ensure_database(database_url)
    await _on_connection(database_url, partial(_locked, partial(command.upgrade, revision=revision)))


async def downgrade(database_url: str, revision: str) -> None:
    """Take the database back to `revision` (`base`: no Borsa tables left)."""
    await _on_connection(database_url, partial(_locked, partial(command.downgrade, revision=revision)))


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None before the first migration."""
    return await _on_connection(
        database_url, lambda connection: MigrationContext.configure(connection).get_current_revision()
    )
