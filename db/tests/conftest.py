"""Fixtures for the migration tests: a database name that does not exist yet, dropped afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import pytest


@pytest.fixture
def missing_database(database_url: str) -> Iterator[str]:
    """The DSN of a database that does not exist yet; whatever creates it, it is dropped afterwards."""
    name = f"t_missing_{uuid.uuid4().hex[:12]}"
    base, _, _ = database_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())


@pytest.fixture
def database_exists(database_url: str) -> Callable[[str], Awaitable[bool]]:
    """`await database_exists(dsn)`: whether the database that `dsn` names is on the server."""

    async def exists(dsn: str) -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", dsn.rpartition("/")[2]
            )
        finally:
            await conn.close()

    return exists
