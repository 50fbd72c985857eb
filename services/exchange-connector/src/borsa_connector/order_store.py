"""The connector's durable record of orders (`connector_orders`, `connector_fills`; DESIGN sections 4 and 7).

A create is claimed here BEFORE it is sent: one INSERT that only the first caller wins. Whoever finds the claim
taken never sends blindly; it looks the order up at the exchange. A claim names the connector instance that made
it; an instance is alive while its database session is (its pool's `application_name`), so a claim left by a
killed process can be taken over at once, and one held by a live replica is waited for.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from borsa_proto import to_builtins
from borsa_proto.orders import Fill, Order
from borsa_runtime.errors import ExchangeUnavailable

log = structlog.get_logger("borsa.connector.orders")

DB_TIMEOUT_SECONDS = 5.0
RECONNECT_SECONDS = 2.0


def new_instance_id(exchange: str) -> str:
    """Unique per process start, at most 63 characters (Postgres application_name)."""
    host = socket.gethostname().split(".")[0][:20]
    return f"borsa-connector/{exchange[:12]}/{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Claim:
    """One row of connector_orders."""

    exchange: str
    account: str
    client_order_id: str
    sent_client_order_id: str
    symbol: str
    market_id: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    state: str
    order_id: str | None
    status: str | None
    filled: Decimal
    published: str | None
    last_order: dict | None
    error: dict | None
    attempt: int
    claimed_by: str
    age_seconds: float

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Claim:
        return cls(
            exchange=row["exchange_name"],
            account=str(row["account_id"]),
            client_order_id=row["client_order_id"],
            sent_client_order_id=row["sent_client_order_id"],
            symbol=row["symbol"],
            market_id=row["market_id"],
            side=row["side"],
            type=row["type"],
            amount=row["amount"],
            price=row["price"],
            state=row["state"],
            order_id=row["order_id"],
            status=row["status"],
            filled=row["filled"],
            published=row["published"],
            last_order=_json(row["last_order"]),
            error=_json(row["error"]),
            attempt=row["attempt"],
            claimed_by=row["claimed_by"],
            age_seconds=float(row["age_seconds"]),
        )

    def same_order(self, symbol: str, side: str, type: str, amount: Decimal, price: Decimal | None) -> bool:
        return (self.symbol, self.side, self.type, self.amount, self.price) == (symbol, side, type, amount, price)


_COLUMNS = """exchange_name, account_id, client_order_id, sent_client_order_id, symbol, market_id, side, type, amount,
    price, state, order_id, status, filled, published, last_order, error, attempt, claimed_by,
    extract(epoch FROM now() - claimed_at) AS age_seconds"""


# The predicate of the connector_orders_pending index (migration 0002), so the tracker's reads use it.
PENDING = (
    "state <> 'rejected' AND (status IS NULL OR status = 'open' OR published IS NULL"
    " OR published NOT LIKE status || ':%')"
)


ENDED = "('closed', 'canceled', 'rejected', 'expired')"
_ENDED = f"status IN {ENDED}"


class _Connection(asyncpg.Connection):
    """A pooled connection released without the reset query: this store never leaves session state behind (no
    LISTEN, no temporary tables, no open transactions), and the query would add a round trip to every order."""

    def get_reset_query(self) -> str:
        return ""


class OrderStore:
    def __init__(self, database_url: str, exchange: str, instance: str, *, max_size: int = 10) -> None:
        self.database_url = database_url
        self.exchange = exchange
        self.instance = instance
        self.max_size = max_size
        self.pool: asyncpg.Pool | None = None
        self._retry: asyncio.Task | None = None

    async def start(self) -> None:
        """Connect now if the database answers, else keep trying in the background: market data and everything
        else go on meanwhile, and order requests answer a retryable error."""
        if not await self._connect():
            self._retry = asyncio.create_task(self._keep_connecting())

    async def _connect(self) -> bool:
        try:
            # min_size 1: this instance's session stays open as long as the process lives; it is the liveness signal.
            self.pool = await asyncpg.create_pool(
                self.database_url,
                min_size=1,
                max_size=self.max_size,
                timeout=DB_TIMEOUT_SECONDS,
                server_settings={"application_name": self.instance},
                connection_class=_Connection,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("order database unavailable; retrying", error=type(exc).__name__)
            return False
        return True

    async def _keep_connecting(self) -> None:
        connected = False
        while not connected:
            await asyncio.sleep(RECONNECT_SECONDS)
            connected = await self._connect()
        log.info("order database connected")

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise ExchangeUnavailable(
                f"the {self.exchange} connector cannot record orders right now (database unavailable); try again",
                exchange=self.exchange,
            )
        return self.pool

    # -- creates ----------------------------------------------------------------------------------------------
    async def claim(
        self,
        account: str,
        client_order_id: str,
        sent_client_order_id: str,
        *,
        symbol: str,
        market_id: str,
        side: str,
        type: str,
        amount: Decimal,
        price: Decimal | None,
    ) -> Claim | None:
        """Record the create before it is sent; None when it was already recorded (by anyone, at any time)."""
        row = await self._pool().fetchrow(
            f"""INSERT INTO connector_orders (exchange_name, account_id, client_order_id, sent_client_order_id,
                    symbol, market_id, side, type, amount, price, claimed_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT DO NOTHING RETURNING {_COLUMNS}""",
            self.exchange,
            uuid.UUID(account),
            client_order_id,
            sent_client_order_id,
            symbol,
            market_id,
            side,
            type,
            amount,
            price,
            self.instance,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return Claim.from_row(row) if row is not None else None

    async def get(self, account: str, client_order_id: str) -> Claim | None:
        row = await self._pool().fetchrow(
            f"SELECT {_COLUMNS} FROM connector_orders WHERE exchange_name = $1 AND account_id = $2"
            " AND client_order_id = $3",
            self.exchange,
            uuid.UUID(account),
            client_order_id,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return Claim.from_row(row) if row is not None else None

    async def client_ids(self, account: str, sent_ids: list[str]) -> dict[str, str]:
        """Borsa's client order id for each id as sent to the exchange (only those Borsa sent)."""
        if not sent_ids:
            return {}
        rows = await self._pool().fetch(
            "SELECT sent_client_order_id, client_order_id FROM connector_orders WHERE exchange_name = $1"
            " AND account_id = $2 AND sent_client_order_id = ANY($3::text[])",
            self.exchange,
            uuid.UUID(account),
            sent_ids,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return {r["sent_client_order_id"]: r["client_order_id"] for r in rows}

    async def take_over(self, claim: Claim) -> Claim | None:
        """Become the sender of a claim whose sender is gone: the claim as taken (its next attempt, which a release
        must name), or None when someone else took it first."""
        row = await self._pool().fetchrow(
            "UPDATE connector_orders SET attempt = attempt + 1, claimed_by = $5, claimed_at = now(), updated_at = now()"
            " WHERE exchange_name = $1 AND account_id = $2 AND client_order_id = $3 AND attempt = $4"
            f" AND state = 'sending' RETURNING {_COLUMNS}",
            self.exchange,
            uuid.UUID(claim.account),
            claim.client_order_id,
            claim.attempt,
            self.instance,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return Claim.from_row(row) if row is not None else None

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose create certainly never reached the exchange (refused before it was sent, or a 429):
        the next create with that id is sent afresh."""
        await self._pool().execute(
            "DELETE FROM connector_orders WHERE exchange_name = $1 AND account_id = $2 AND client_order_id = $3"
            " AND state = 'sending' AND attempt = $4",
            self.exchange,
            uuid.UUID(claim.account),
            claim.client_order_id,
            claim.attempt,
            timeout=DB_TIMEOUT_SECONDS,
        )

    async def record(self, order: Order, published: str | None = None) -> None:
        """The order as last seen at the exchange (and, when given, the mark of the event just published for it).
        Never goes back: an ended order stays ended and filled never shrinks, whatever arrives late."""
        await self._pool().execute(
            f"""UPDATE connector_orders SET state = 'placed', order_id = $4,
                    status = CASE WHEN {_ENDED} AND $5 NOT IN {ENDED} THEN status ELSE $5 END,
                    last_order = CASE WHEN {_ENDED} AND $5 NOT IN {ENDED} THEN last_order ELSE $7::jsonb END,
                    published = CASE WHEN {_ENDED} AND $5 NOT IN {ENDED} THEN published
                                     ELSE COALESCE($8, published) END,
                    filled = GREATEST(filled, $6), updated_at = now()
                WHERE exchange_name = $1 AND account_id = $2 AND client_order_id = $3""",
            self.exchange,
            uuid.UUID(order.account),
            order.client_order_id,
            order.id,
            str(order.status),
            order.filled,
            json.dumps(to_builtins(order)),
            published,
            timeout=DB_TIMEOUT_SECONDS,
        )

    async def alive(self, instance: str) -> bool:
        """Is that connector instance's database session still open? (A killed process's session ends with it.)"""
        if instance == self.instance:
            return True
        return bool(
            await self._pool().fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1)",
                instance,
                timeout=DB_TIMEOUT_SECONDS,
            )
        )

    # -- tracking ---------------------------------------------------------------------------------------------
    async def adopt_orphans(self) -> int:
        """Take over the tracking of orders whose connector instance is gone (its database session ended): after a
        restart, this is how the new process learns what its predecessor left open."""
        result = await self._pool().execute(
            f"UPDATE connector_orders SET claimed_by = $2 WHERE exchange_name = $1 AND {PENDING} AND claimed_by <> $2"
            " AND claimed_by NOT IN (SELECT application_name FROM pg_stat_activity WHERE application_name <> '')",
            self.exchange,
            self.instance,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return int(result.rsplit(" ", 1)[-1])

    async def pending_accounts(self) -> list[str]:
        rows = await self._pool().fetch(
            f"SELECT DISTINCT account_id FROM connector_orders WHERE exchange_name = $1 AND claimed_by = $2"
            f" AND {PENDING}",
            self.exchange,
            self.instance,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return [str(r["account_id"]) for r in rows]

    async def pending(self, account: str) -> list[Claim]:
        """Orders of this instance and account that need tracking: open (or not known yet), or whose latest state
        has not been published."""
        rows = await self._pool().fetch(
            f"SELECT {_COLUMNS} FROM connector_orders WHERE exchange_name = $1 AND account_id = $2"
            f" AND claimed_by = $3 AND {PENDING} ORDER BY created_at",
            self.exchange,
            uuid.UUID(account),
            self.instance,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return [Claim.from_row(r) for r in rows]

    async def by_order_id(self, account: str, order_id: str) -> Claim | None:
        row = await self._pool().fetchrow(
            f"SELECT {_COLUMNS} FROM connector_orders WHERE exchange_name = $1 AND account_id = $2 AND order_id = $3",
            self.exchange,
            uuid.UUID(account),
            order_id,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return Claim.from_row(row) if row is not None else None

    async def add_fills(self, account: str, order: Order, fills: list[Fill]) -> list[Fill]:
        """Record fills; returns those not recorded before (each fill is published once with its order's event)."""
        if not fills:
            return []
        rows = await self._pool().fetch(
            """INSERT INTO connector_fills (exchange_name, account_id, trade_id, order_id, client_order_id, symbol,
                    side, price, amount, fee_cost, fee_currency, timestamp_ms)
               SELECT $1, $2, f.trade_id, $3, $4, $5, $6, f.price, f.amount, f.fee_cost, f.fee_currency, f.ts
               FROM unnest($7::text[], $8::numeric[], $9::numeric[], $10::numeric[], $11::text[], $12::bigint[])
                    AS f(trade_id, price, amount, fee_cost, fee_currency, ts)
               ON CONFLICT DO NOTHING RETURNING trade_id""",
            self.exchange,
            uuid.UUID(account),
            order.id,
            order.client_order_id,
            order.symbol,
            str(order.side),
            [f.trade_id for f in fills],
            [f.price for f in fills],
            [f.amount for f in fills],
            [f.fee_cost for f in fills],
            [f.fee_currency for f in fills],
            [f.timestamp for f in fills],
            timeout=DB_TIMEOUT_SECONDS,
        )
        new = {r["trade_id"] for r in rows}
        return [f for f in fills if f.trade_id in new]

    async def fills_of(self, account: str, order_id: str) -> list[Fill]:
        rows = await self._pool().fetch(
            "SELECT trade_id, price, amount, fee_cost, fee_currency, timestamp_ms FROM connector_fills"
            " WHERE exchange_name = $1 AND account_id = $2 AND order_id = $3 ORDER BY timestamp_ms, trade_id",
            self.exchange,
            uuid.UUID(account),
            order_id,
            timeout=DB_TIMEOUT_SECONDS,
        )
        return [
            Fill(
                trade_id=r["trade_id"],
                price=r["price"],
                amount=r["amount"],
                fee_cost=r["fee_cost"],
                fee_currency=r["fee_currency"],
                timestamp=r["timestamp_ms"],
            )
            for r in rows
        ]


def _json(value: Any) -> dict | None:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value
