"""Stored API keys: read from Postgres, opened with the connector's sealing key, one ccxt client per key.

Every account client comes from `api.new_client`, so it shares the process's loaded markets and request budget.
Clients are cached (least recently used out first) and leased: an evicted or revoked client is closed when its
last request ends, never under a request still using it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from borsa_runtime.errors import BadRequest, ExchangeUnavailable, Internal, NotSupported, UnknownAccount
from borsa_runtime.sealing import SealingError, from_wire, open_sealed
from borsa_runtime.settings import Secret

from .paper import PaperClient, parse_starting_balances

if TYPE_CHECKING:
    from .exchanges.ccxt_api import CcxtExchangeAPI

log = structlog.get_logger("borsa.connector.accounts")

ACCOUNT_SQL = "SELECT exchange_name, mode, sealed_credentials, status, paper_balances FROM api_keys WHERE id = $1"
DB_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class StoredAccount:
    id: str
    exchange: str
    mode: str
    """live, sandbox or paper."""


@dataclass
class Lease:
    """An account and its client for the length of one request; a paper account's client is a `PaperClient`."""

    account: StoredAccount
    client: Any
    row: tuple = field(repr=False, default=())
    checked_at: float = 0.0
    users: int = 0
    retired: bool = False


class AccountStore:
    def __init__(
        self,
        api: CcxtExchangeAPI,
        *,
        database_url: str | None,
        sealing_key: Secret | None,
        max_clients: int = 500,
        recheck_seconds: float = 300.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.api = api
        self.database_url = database_url
        self.sealing_key = sealing_key
        self.max_clients = max_clients
        # A revocation notice is at-most-once (plain NATS publish): rows are read again after this long anyway.
        self.recheck_seconds = recheck_seconds
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._cached: OrderedDict[str, Lease] = OrderedDict()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._loading: dict[str, object] = {}
        self._closing: set[asyncio.Task] = set()
        registry = registry or CollectorRegistry()
        self.clients_gauge = Gauge(
            "borsa_connector_account_clients", "Cached ccxt clients of stored API keys", ["exchange"], registry=registry
        )
        self.clients_opened = Counter(
            "borsa_connector_account_clients_opened",
            "ccxt clients built for stored API keys (one per key while it stays cached)",
            ["exchange"],
            registry=registry,
        )

    # -- sealed credentials -----------------------------------------------------------------------------------
    def unseal(self, wire: str) -> dict[str, Any]:
        """Credentials of a key about to be stored, from the bus's base64 sealed box."""
        try:
            sealed = from_wire(wire)
        except SealingError as exc:
            raise BadRequest(f"sealed_credentials is not valid base64: {exc}") from None
        try:
            return open_sealed(sealed, self._key())
        except (SealingError, ValueError):
            raise BadRequest(
                f"sealed_credentials do not open with the {self.api.id} connector's key: seal them with the "
                "connectors' public key (BORSA_SEALING_PUBLIC_KEY)"
            ) from None

    def _key(self) -> str:
        if self.sealing_key is None:
            # A market-data-only deployment: keys are not supported here, and retrying will not change that.
            raise NotSupported(
                f"the {self.api.id} connector holds no sealing key (BORSA_SEALING_KEY), so it cannot open API keys; "
                "it serves market data only",
                exchange=self.api.id,
            )
        return self.sealing_key.reveal()

    # -- accounts ---------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def lease(self, account_id: str) -> AsyncIterator[Lease]:
        """The account and its cached client for one request; UnknownAccount if it cannot be used here."""
        entry = await self._entry(account_id)
        entry.users += 1
        try:
            yield entry
        finally:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                self._close(entry)

    async def get(self, account_id: str) -> StoredAccount:
        async with self.lease(account_id) as entry:
            return entry.account

    async def forget(self, account_id: str) -> None:
        """Drop the account's client (closed once no request uses it); the next request reads the row again."""
        self._loading.pop(account_id, None)  # a read under way when the notice came must not cache its client
        if self._drop(account_id):
            log.info("account client dropped", account=account_id)

    async def close(self) -> None:
        entries = list(self._cached.values())
        self._cached.clear()
        for entry in entries:
            self._close(entry)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _entry(self, account_id: str) -> Lease:
        if not self.database_url:
            raise NotSupported(
                f"the {self.api.id} connector has no DATABASE_URL, so it cannot read stored API keys; it serves "
                "market data only",
                exchange=self.api.id,
            )
        entry = self._fresh(account_id)
        if entry is not None:
            return entry
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        async with lock:  # one read and one client per account, however many requests arrive at once
            entry = self._fresh(account_id)
            if entry is not None:
                return entry
            stale = self._cached.get(account_id)
            token = self._loading[account_id] = object()
            try:
                row = await self._row(account_id)
            except ExchangeUnavailable:
                if stale is None or stale.retired:
                    raise
                return stale  # a failed periodic re-read must not stop trading; the next request reads again
            except UnknownAccount:
                self._drop(account_id)  # revoked or moved while cached, and no notice reached us
                raise
            finally:
                revoked = self._loading.pop(account_id, None) is not token
            if revoked:  # a revocation notice arrived while the row was read: serve this request, then close
                fresh = await self._build(account_id, row)
                fresh.retired = True
                return fresh
            if stale is not None:
                if stale.row == row:
                    stale.checked_at = time.monotonic()
                    return stale
                self._drop(account_id)  # the row changed: a client for the row as it is now
            fresh = self._cached[account_id] = await self._build(account_id, row)
            while len(self._cached) > self.max_clients:
                _, evicted = self._cached.popitem(last=False)
                self._retire(evicted)
            self.clients_gauge.labels(self.api.id).set(len(self._cached))
            return fresh

    def _drop(self, account_id: str) -> bool:
        entry = self._cached.pop(account_id, None)
        self.clients_gauge.labels(self.api.id).set(len(self._cached))
        if entry is None:
            return False
        self._retire(entry)
        return True

    def _fresh(self, account_id: str) -> Lease | None:
        entry = self._cached.get(account_id)
        if entry is None or time.monotonic() - entry.checked_at >= self.recheck_seconds:
            return None
        self._cached.move_to_end(account_id)
        return entry

    async def _build(self, account_id: str, row: tuple) -> Lease:
        exchange, mode, sealed, _status, paper_balances = row
        account = StoredAccount(id=account_id, exchange=exchange, mode=mode)
        if mode == "paper":
            # No credentials and no exchange client: orders fill against the exchange's public market data.
            starting = parse_starting_balances(paper_balances, account_id)
            client = PaperClient(self.api, account_id, await self._get_pool(), starting)
            log.info("paper account opened", account=account_id)
        else:
            try:
                raw = open_sealed(bytes(sealed), self._key())
            except (SealingError, ValueError):
                raise Internal(
                    f"API key {account_id} cannot be opened with this {self.api.id} connector's sealing key; it was "
                    "sealed for another key (was BORSA_SEALING_KEY rotated?)",
                    exchange=self.api.id,
                ) from None
            client = self.api.account_client(self.api.credentials_from(raw), mode, account_id)
            self.clients_opened.labels(self.api.id).inc()
            log.info("account client opened", account=account_id, mode=mode)
        return Lease(account=account, client=client, row=row, checked_at=time.monotonic())

    async def _row(self, account_id: str) -> tuple:
        exchange = self.api.id
        try:
            key_id = uuid.UUID(account_id)
        except (ValueError, TypeError, AttributeError):
            raise UnknownAccount(
                f"no API key {account_id!r}: account must be the id of a stored API key", exchange=exchange
            ) from None
        try:
            pool = await self._get_pool()
            row = await pool.fetchrow(ACCOUNT_SQL, key_id, timeout=DB_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("api key lookup failed", account=account_id, error=f"{type(exc).__name__}: {exc}")
            raise ExchangeUnavailable(
                f"the {exchange} connector cannot read stored API keys right now (database unavailable); try again",
                exchange=exchange,
            ) from None
        if row is None:
            raise UnknownAccount(f"no API key {account_id} is stored", exchange=exchange)
        if row["exchange_name"] != exchange:
            raise UnknownAccount(
                f"API key {account_id} belongs to {row['exchange_name']}, not {exchange}: ask the "
                f"{row['exchange_name']} connector",
                exchange=exchange,
            )
        if row["status"] != "active":
            raise UnknownAccount(f"API key {account_id} was revoked; add the key again to use it", exchange=exchange)
        return (row["exchange_name"], row["mode"], row["sealed_credentials"], row["status"], row["paper_balances"])

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.database_url, min_size=0, max_size=4, timeout=DB_TIMEOUT_SECONDS
                )
            return self._pool

    def _retire(self, entry: Lease) -> None:
        entry.retired = True
        if entry.users == 0:
            self._close(entry)

    def _close(self, entry: Lease) -> None:
        """Close in the background: ccxt's close() sleeps 250 ms, which no request should wait for."""
        client, entry.client = entry.client, None
        if client is not None:
            task = asyncio.create_task(self._close_client(entry.account.id, client))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_client(account_id: str, client: Any) -> None:
        try:
            await client.close()
        except Exception as exc:  # a client that fails to close must not fail anything else
            log.warning("account client close failed", account=account_id, error=type(exc).__name__)
