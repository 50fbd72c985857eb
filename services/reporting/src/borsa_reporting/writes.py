"""The SQL of one batch: its rows COPYed into session temp tables, then written with a few set-based statements.

Binary COPY of text is cheap for asyncpg where parameters are not: a numeric is built from the Decimal's digits, and
every element of an array parameter goes through an isinstance check against an abstract class. So money goes to the
staging tables as the decimal strings the events carried, for Postgres to cast, and keys go as text too (accounts in
their canonical form, as Postgres writes a uuid). The staging tables are emptied at every commit.
"""

from __future__ import annotations

GroupKey = tuple[str, str, str, str]
"""(exchange, account, bot key ('' for no bot), symbol)."""

# The UTC day of a time in ms, as `datetime.fromtimestamp(ms / 1000, UTC).date()` has it (floor, not truncation).
DAY = "(date '1970-01-01' + floor({} / 86400000.0)::int)"

# Created once per session (ingest keeps its connection); ON COMMIT DELETE ROWS empties them after every batch.
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS reporting_keys (
    exchange_name text, account_id uuid, trade_id text, bot_key text, symbol text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS reporting_fills (
    exchange_name text, account_id uuid, trade_id text, order_id text, client_order_id text, bot_id uuid,
    bot_key text, symbol text, base text, quote text, side text, price text, amount text, fee_cost text,
    fee_currency text, fee_quote text, fee_rate text, realized_pnl text, timestamp_ms bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS reporting_orders (
    exchange_name text, account_id uuid, order_id text, client_order_id text, bot_id uuid, bot_key text,
    symbol text, quote text, market_id text, side text, type text, status text, amount text, filled text,
    price text, average text, cost text, fee_cost text, fee_currency text, created_ms bigint, updated_ms bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS reporting_positions (
    exchange_name text, account_id uuid, bot_key text, symbol text, base text, quote text, created boolean,
    lots text, position text, cost text, last_ms bigint, last_trade text
) ON COMMIT DELETE ROWS;
"""
KEY_COLUMNS = ("exchange_name", "account_id", "trade_id", "bot_key", "symbol")
FILL_COLUMNS = (
    "exchange_name",
    "account_id",
    "trade_id",
    "order_id",
    "client_order_id",
    "bot_id",
    "bot_key",
    "symbol",
    "base",
    "quote",
    "side",
    "price",
    "amount",
    "fee_cost",
    "fee_currency",
    "fee_quote",
    "fee_rate",
    "realized_pnl",
    "timestamp_ms",
)
ORDER_COLUMNS = (
    "exchange_name",
    "account_id",
    "order_id",
    "client_order_id",
    "bot_id",
    "bot_key",
    "symbol",
    "quote",
    "market_id",
    "side",
    "type",
    "status",
    "amount",
    "filled",
    "price",
    "average",
    "cost",
    "fee_cost",
    "fee_currency",
    "created_ms",
    "updated_ms",
)
POSITION_COLUMNS = (
    "exchange_name",
    "account_id",
    "bot_key",
    "symbol",
    "base",
    "quote",
    "created",
    "lots",
    "position",
    "cost",
    "last_ms",
    "last_trade",
)

# One statement, so one round trip: fills, each once (the keys known before were left out under the groups' locks;
# ON CONFLICT as a last guard); orders upserted, a later state never replaced by an earlier one; the orders seen for
# the first time and the new fills added to their groups' daily sums; the groups' open lots after the batch, a new
# group inserted without ON CONFLICT (another replica creating it at the same moment fails this batch, which is
# then tried again and finds it). Every part of a WITH runs to its end whether or not the final SELECT reads it.
# A fill's cost is price times amount in numeric, exact. A new order's group comes back from its own row (its bot
# key and quote as ingest.bot_key and split_symbol make them), not from a join with the staged orders.
WRITE = f"""
WITH fills AS (
    INSERT INTO report_fills (exchange_name, account_id, trade_id, order_id, client_order_id, bot_id, symbol, base,
        quote, side, price, amount, cost, fee_cost, fee_currency, fee_quote, fee_rate, realized_pnl, timestamp_ms)
    SELECT exchange_name, account_id, trade_id, order_id, client_order_id, bot_id, symbol, base, quote, side,
        price::numeric, amount::numeric, price::numeric * amount::numeric, fee_cost::numeric, fee_currency,
        fee_quote::numeric,
        fee_rate::numeric, realized_pnl::numeric, timestamp_ms
    FROM reporting_fills
    ON CONFLICT DO NOTHING
    RETURNING 1
), upserted AS (
    INSERT INTO report_orders AS r (exchange_name, account_id, order_id, client_order_id, bot_id, symbol, market_id,
        side, type, status, amount, filled, price, average, cost, fee_cost, fee_currency, created_ms, updated_ms)
    SELECT exchange_name, account_id, order_id, client_order_id, bot_id, symbol, market_id, side, type, status,
        amount::numeric, filled::numeric, price::numeric, average::numeric, cost::numeric, fee_cost::numeric,
        fee_currency, created_ms, updated_ms
    FROM reporting_orders
    ON CONFLICT (exchange_name, account_id, order_id) DO UPDATE SET
        status = CASE WHEN r.status IN ('closed', 'canceled', 'rejected', 'expired') THEN r.status
                      ELSE EXCLUDED.status END,
        filled = greatest(r.filled, EXCLUDED.filled),
        average = CASE WHEN EXCLUDED.filled >= r.filled THEN coalesce(EXCLUDED.average, r.average)
                       ELSE r.average END,
        cost = greatest(r.cost, EXCLUDED.cost),
        fee_cost = CASE WHEN EXCLUDED.filled >= r.filled THEN coalesce(EXCLUDED.fee_cost, r.fee_cost)
                        ELSE r.fee_cost END,
        fee_currency = coalesce(EXCLUDED.fee_currency, r.fee_currency),
        updated_ms = greatest(r.updated_ms, EXCLUDED.updated_ms)
    RETURNING (xmax = 0) AS inserted, exchange_name, account_id, coalesce(bot_id::text, '') AS bot_key, symbol,
        split_part(split_part(symbol, '/', 2), ':', 1) AS quote, created_ms
), added AS (
    SELECT exchange_name, account_id, bot_key, symbol, {DAY.format("created_ms")} AS day, quote,
        1 AS orders, 0 AS fills, 0 AS volume, 0 AS fees, 0 AS unconverted, 0 AS realized_pnl
    FROM upserted
    WHERE inserted
    UNION ALL
    SELECT exchange_name, account_id, bot_key, symbol, {DAY.format("timestamp_ms")}, quote, 0, 1,
        price::numeric * amount::numeric, coalesce(fee_quote::numeric, 0), (fee_quote IS NULL)::int,
        realized_pnl::numeric
    FROM reporting_fills
), daily AS (
    INSERT INTO report_daily AS d (exchange_name, account_id, bot_key, symbol, day, quote, orders, fills, volume,
        fees, unconverted, realized_pnl)
    SELECT exchange_name, account_id, bot_key, symbol, day, quote, sum(orders), sum(fills), sum(volume), sum(fees),
        sum(unconverted), sum(realized_pnl)
    FROM added
    GROUP BY exchange_name, account_id, bot_key, symbol, day, quote
    ON CONFLICT (exchange_name, account_id, bot_key, symbol, day) DO UPDATE SET
        orders = d.orders + EXCLUDED.orders, fills = d.fills + EXCLUDED.fills,
        volume = d.volume + EXCLUDED.volume, fees = d.fees + EXCLUDED.fees,
        unconverted = d.unconverted + EXCLUDED.unconverted,
        realized_pnl = d.realized_pnl + EXCLUDED.realized_pnl
), new_groups AS (
    INSERT INTO report_positions (exchange_name, account_id, bot_key, symbol, base, quote, lots, position, cost,
        last_ms, last_trade)
    SELECT exchange_name, account_id, bot_key, symbol, base, quote, lots::jsonb, position::numeric, cost::numeric,
        last_ms, last_trade
    FROM reporting_positions WHERE created
), groups AS (
    UPDATE report_positions p SET lots = g.lots::jsonb, position = g.position::numeric, cost = g.cost::numeric,
        last_ms = g.last_ms, last_trade = g.last_trade
    FROM reporting_positions g
    WHERE NOT g.created
      AND (p.exchange_name, p.account_id, p.bot_key, p.symbol) = (g.exchange_name, g.account_id, g.bot_key, g.symbol)
)
SELECT (SELECT count(*) FROM upserted WHERE inserted) AS orders_new, (SELECT count(*) FROM fills) AS fills_new
"""


async def stage(conn) -> None:
    """The staging tables of this session, created the first time."""
    await conn.execute(STAGING)


async def lock(conn, keys: list[tuple]) -> tuple[list, set[tuple[str, str, str]]]:
    """Lock the groups of the batch's fills `keys` (exchange, account, trade id, bot key, symbol) and find which of
    those fills were written before: (the rows of the groups that exist, with their open lots and newest fill; the
    keys (exchange, account, trade id) already written)."""
    await conn.copy_records_to_table("reporting_keys", records=keys, columns=KEY_COLUMNS)
    # In key order, so that replicas sharing the consumer wait for each other instead of deadlocking.
    locked = await conn.fetch(
        """
        SELECT exchange_name, account_id::text AS account_id, bot_key, symbol, lots::text AS lots, last_ms, last_trade
        FROM report_positions
        WHERE (exchange_name, account_id, bot_key, symbol) IN
            (SELECT exchange_name, account_id, bot_key, symbol FROM reporting_keys)
        ORDER BY exchange_name, account_id, bot_key, symbol
        FOR UPDATE
        """
    )
    # A statement of its own, after the locks: it sees what another replica committed while this one waited.
    known = await conn.fetch(
        """
        SELECT f.exchange_name, f.account_id::text AS account_id, f.trade_id
        FROM report_fills f JOIN reporting_keys k USING (exchange_name, account_id, trade_id)
        """
    )
    return locked, {tuple(r) for r in known}


async def write(conn, fills: list[tuple], orders: list[tuple], positions: list[tuple]) -> tuple[int, int]:
    """Stage the batch's new fills, its orders and its groups' new state, then write them all in one round trip:
    (orders seen for the first time, fills written)."""
    if fills:
        await conn.copy_records_to_table("reporting_fills", records=fills, columns=FILL_COLUMNS)
    if orders:
        await conn.copy_records_to_table("reporting_orders", records=orders, columns=ORDER_COLUMNS)
    if positions:
        await conn.copy_records_to_table("reporting_positions", records=positions, columns=POSITION_COLUMNS)
    row = await conn.fetchrow(WRITE)
    return row["orders_new"], row["fills_new"]
