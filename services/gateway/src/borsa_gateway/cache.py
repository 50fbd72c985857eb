"""Each user's encoded bot list, kept until that user's bots change.

A change made through any gateway replica is announced on `borsa.gateway.bots.changed` (the user id), and every
replica drops that user's entries; so does anything else that changes bots (the bot runner pausing one). A
short lifetime bounds what a lost announcement could cost; a per-user generation keeps a read that raced a
write from storing what it read before the write.
"""

from __future__ import annotations

import time
from uuid import UUID

from nats.aio.client import Client

SUBJECT = "borsa.gateway.bots.changed"
TTL_SECONDS = 30.0


class BotListCache:
    def __init__(self, nc: Client | None = None, ttl: float = TTL_SECONDS) -> None:
        self.nc = nc
        self.ttl = ttl
        self._entries: dict[tuple[UUID, str | None], tuple[float, int, bytes]] = {}
        self._generation: dict[UUID, int] = {}

    async def start(self) -> None:
        if self.nc is not None:
            await self.nc.subscribe(SUBJECT, cb=self._on_change)

    async def _on_change(self, msg) -> None:
        try:
            self.drop(UUID(msg.data.decode()))
        except ValueError:
            pass

    def generation(self, user: UUID) -> int:
        return self._generation.get(user, 0)

    def get(self, user: UUID, exchange: str | None) -> bytes | None:
        entry = self._entries.get((user, exchange))
        if entry is None:
            return None
        expires, generation, body = entry
        if expires < time.monotonic() or generation != self.generation(user):
            self._entries.pop((user, exchange), None)
            return None
        return body

    def put(self, user: UUID, exchange: str | None, generation: int, body: bytes) -> None:
        if generation == self.generation(user):
            self._entries[(user, exchange)] = (time.monotonic() + self.ttl, generation, body)

    def drop(self, user: UUID) -> None:
        self._generation[user] = self.generation(user) + 1
        for key in [k for k in self._entries if k[0] == user]:
            del self._entries[key]

    async def changed(self, user: UUID) -> None:
        self.drop(user)
        if self.nc is not None:
            await self.nc.publish(SUBJECT, str(user).encode())
