"""Market-data fan-out: each watched (exchange, symbol) is polled ONCE per interval however many bots watch it,
and its ticker is published on `borsa.market.<ex>.ticker.<token>`.

Leases arrive on the queue-grouped `watch` subject (one replica answers), so the answering replica forwards
each lease to every replica; one replica per symbol polls, the one holding that symbol's key in a JetStream
key-value bucket whose entries age out, so a dead poller is replaced within the bucket's TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import msgspec
import structlog
from nats.aio.client import Client
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from borsa_proto import encode
from borsa_proto.exchange import WatchReply
from borsa_proto.subjects import market_ticker, symbol_token

from .exchanges.ccxt_api import CcxtExchangeAPI
from .metrics import Metrics

log = structlog.get_logger("borsa.connector.watch")


class LeaseNotice(msgspec.Struct, frozen=True):
    symbol: str
    expires_ms: int


def lease_subject(exchange: str) -> str:
    return f"borsa.internal.connector.{exchange}.lease"


def lock_bucket(exchange: str) -> str:
    return f"borsa_watch_{exchange}"


class WatchManager:
    def __init__(
        self,
        nc: Client,
        api: CcxtExchangeAPI,
        metrics: Metrics,
        *,
        interval_ms: int,
        lease_ms: int,
        replica_id: str = "",
    ) -> None:
        self.nc = nc
        self.api = api
        self.metrics = metrics
        self.interval = interval_ms / 1000
        self.lease_ms = lease_ms
        self.replica = replica_id or uuid.uuid4().hex[:12]
        self.leases: dict[str, int] = {}  # unified symbol -> expiry (ms)
        self._kv: KeyValue | None = None
        self._sub = None
        self._task: asyncio.Task | None = None
        self._held: set[str] = set()

    async def start(self) -> None:
        js = self.nc.jetstream()
        # Entries older than a few intervals are gone: a poller that stops refreshing its key loses the symbol.
        ttl = max(3 * self.interval, 1.0)
        try:
            self._kv = await js.key_value(lock_bucket(self.api.id))
        except Exception:
            self._kv = await js.create_key_value(bucket=lock_bucket(self.api.id), ttl=ttl, history=1)
        self._sub = await self.nc.subscribe(lease_subject(self.api.id), cb=self._on_notice)
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.api.id}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for symbol in list(self._held):
            await self._release(symbol)

    # -- leases -----------------------------------------------------------------------------------------------
    async def watch(self, symbol: str, lease_ms: int | None) -> WatchReply:
        market = self.api.market(symbol)
        lease = min(max(lease_ms or self.lease_ms, 1000), 10 * self.lease_ms)
        expires = int(time.time() * 1000) + lease
        self._note(market.symbol, expires)
        await self.nc.publish(lease_subject(self.api.id), msgspec.json.encode(LeaseNotice(market.symbol, expires)))
        return WatchReply(
            symbol=market.symbol,
            market_id=market.market_id,
            subject=market_ticker(self.api.id, market.symbol),
            lease_ms=lease,
        )

    def _note(self, symbol: str, expires: int) -> None:
        if expires > self.leases.get(symbol, 0):
            self.leases[symbol] = expires

    async def _on_notice(self, msg) -> None:
        try:
            notice = msgspec.json.decode(msg.data, type=LeaseNotice)
        except msgspec.DecodeError:
            log.warning("bad lease notice", subject=msg.subject)
            return
        self._note(notice.symbol, notice.expires_ms)

    def live_symbols(self) -> list[str]:
        now = int(time.time() * 1000)
        for symbol, expires in list(self.leases.items()):
            if expires <= now:
                del self.leases[symbol]
        self.metrics.watched.labels(self.api.id).set(len(self.leases))
        return list(self.leases)

    # -- polling ----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            live = self.live_symbols()
            for symbol in list(self._held - set(live)):
                await self._release(symbol)
            mine = [s for s in live if await self._claim(s)]
            if mine:
                await asyncio.gather(*(self._poll(s) for s in mine))
            await asyncio.sleep(max(0.0, self.interval - (time.perf_counter() - started)))

    async def _claim(self, symbol: str) -> bool:
        """Hold (or keep holding) this symbol's poller key; False when another replica holds it."""
        assert self._kv is not None
        key = symbol_token(symbol)
        try:
            if symbol in self._held:
                await self._kv.put(key, self.replica.encode())
                return True
            await self._kv.create(key, self.replica.encode())
        except KeyWrongLastSequenceError:
            try:
                entry = await self._kv.get(key)
            except NotFoundError:
                return False
            if entry.value != self.replica.encode():
                return False
        except Exception:
            log.exception("watch lock failed", symbol=symbol)
            return False
        self._held.add(symbol)
        return True

    async def _release(self, symbol: str) -> None:
        self._held.discard(symbol)
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(symbol_token(symbol))

    async def _poll(self, symbol: str) -> None:
        try:
            ticker = await self.api.ticker(symbol)
        except Exception as exc:  # one bad poll must not stop the others; the next interval tries again
            log.warning("ticker poll failed", symbol=symbol, error=str(exc))
            return
        self.metrics.polls.labels(self.api.id).inc()
        await self.nc.publish(market_ticker(self.api.id, symbol), encode(ticker))
