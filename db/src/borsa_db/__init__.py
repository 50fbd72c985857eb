"""Borsa's Postgres schema: Alembic migrations shipped inside the package, the calls that apply them, connections.

The migration calls load Alembic and SQLAlchemy on first use, so a service that only connects stays quick to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from borsa_db.connect import (
    DatabaseMissing,
    DatabaseUnavailable,
    asyncpg_dsn,
    connect,
    connect_pool,
    ensure_database,
)

if TYPE_CHECKING:
    from borsa_db.migrator import current_revision, downgrade, head_revision, migrate

_MIGRATE = ("current_revision", "downgrade", "head_revision", "migrate")

__all__ = [
    "DatabaseMissing",
    "DatabaseUnavailable",
    "asyncpg_dsn",
    "connect",
    "connect_pool",
    "current_revision",
    "downgrade",
    "ensure_database",
    "head_revision",
    "migrate",
]


def __getattr__(name: str) -> Any:
    if name in _MIGRATE:
        from borsa_db import migrator

        globals().update({attr: getattr(migrator, attr) for attr in _MIGRATE})
        return globals()[name]
    raise AttributeError(f"module 'borsa_db' has no attribute {name!r}")
