"""Where a secret turned up: everything on the bus, every table of a database, logs and answers, searched as text."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats


class BusTap:
    """Every message on a NATS server (subject, payload and headers) while the tap is open."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[bytes] = []
        self._nc = None

    async def __aenter__(self) -> BusTap:
        self._nc = await nats.connect(self.url)
        await self._nc.subscribe(">", cb=self._record)
        await self._nc.flush()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._nc.flush()
        await self._nc.drain()  # what arrived before is recorded

    async def _record(self, msg) -> None:
        self.seen.append(msg.subject.encode() + b" " + msg.data + b" " + str(msg.headers or "").encode())


async def table_texts(dsn: str) -> dict[str, str]:
    """Every row of every table in the public schema, as text, by table."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [t for (t,) in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: "\n".join(str(dict(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        await conn.close()


def found(
    secret: str,
    *,
    answers: list[str] = (),
    bus: BusTap | None = None,
    logs: list[Path] = (),
    tables: dict[str, str] | None = None,
) -> list[str]:
    """The places that hold `secret`: "answers", "bus", a log's path, "table <name>"; [] when none does."""
    places = ["answers"] if any(secret in a for a in answers) else []
    if bus is not None and any(secret.encode() in m for m in bus.seen):
        places.append("bus")
    places += [str(path) for path in logs if secret in path.read_text()]
    places += [f"table {name}" for name, text in (tables or {}).items() if secret in text]
    return places
