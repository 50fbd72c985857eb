"""Connections to the database that `DATABASE_URL` names, with errors that say which variable to fix.

asyncpg only: importing this is cheap, unlike the migration machinery (Alembic, SQLAlchemy).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

import asyncpg

from borsa_runtime.redact import mask_url_password

# A server that does not answer should fail in seconds, not after asyncpg's 60 s default.
CONNECT_TIMEOUT = 10.0
CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)
# Tried in order to create a missing database: `postgres` is there on every cluster initdb made.
ADMIN_DATABASES = ("postgres", "template1")


class DatabaseUnavailable(RuntimeError):
    """The database DATABASE_URL names cannot be used: fix the variable or the server; the message says which."""


class DatabaseMissing(DatabaseUnavailable):
    """The database DATABASE_URL names does not exist (`borsa-migrate` creates it)."""


def asyncpg_dsn(database_url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's spelling) or `postgres://…` -> a DSN asyncpg.connect accepts."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme.partition("+")[0] not in ("postgresql", "postgres"):
        raise DatabaseUnavailable(
            f"DATABASE_URL={mask_url_password(database_url)!r} is not a Postgres URL: "
            "use postgresql://user[:password]@host:port/database"
        )
    return f"postgresql://{rest}"


def shown(database_url: str) -> str:
    """`DATABASE_URL=<url with its password masked>`, for messages."""
    return f"DATABASE_URL={mask_url_password(database_url)}"


async def connect(database_url: str) -> asyncpg.Connection:
    """One asyncpg connection; DatabaseUnavailable (or DatabaseMissing) when that fails."""
    dsn = asyncpg_dsn(database_url)
    try:
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseMissing(f"{shown(dsn)}: {exc}; `borsa-migrate upgrade` creates it") from exc
    except CONNECT_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database at {shown(dsn)}: {exc or type(exc).__name__}"
        ) from exc


async def connect_pool(database_url: str, **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool on DATABASE_URL (keyword arguments go to asyncpg.create_pool)."""
    dsn = asyncpg_dsn(database_url)
    kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    try:
        return await asyncpg.create_pool(dsn, **kwargs)
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseMissing(f"{shown(dsn)}: {exc}; `borsa-migrate upgrade` creates it") from exc
    except CONNECT_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database at {shown(dsn)}: {exc or type(exc).__name__}"
        ) from exc


async def ensure_database(database_url: str) -> bool:
    """Create the database DATABASE_URL names unless it exists; True when this call created it."""
    dsn = asyncpg_dsn(database_url)
    try:
        conn = await connect(dsn)
    except DatabaseMissing:
        pass
    else:
        await conn.close()
        return False
    name = unquote(urlsplit(dsn).path.lstrip("/"))
    if not name:
        raise DatabaseUnavailable(f"{shown(dsn)} names no database: end it with /<database>")
    admin = await _connect_admin(dsn)
    try:
        await admin.execute(f"CREATE DATABASE {_quote_ident(name)}")
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        return False  # another migrator created it a moment ago
    except asyncpg.InsufficientPrivilegeError as exc:
        raise DatabaseUnavailable(
            f"database {name!r} does not exist and the role of {shown(dsn)} may not create it ({exc}): "
            "create it, or grant the role CREATEDB"
        ) from exc
    finally:
        await admin.close()
    return True


async def _connect_admin(dsn: str) -> asyncpg.Connection:
    for admin_db in ADMIN_DATABASES:
        try:
            return await connect(urlsplit(dsn)._replace(path="/" + quote(admin_db)).geturl())
        except DatabaseMissing:
            continue
    raise DatabaseUnavailable(f"cannot create the database of {shown(dsn)}: the server has no postgres or template1")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
