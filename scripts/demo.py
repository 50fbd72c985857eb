"""The demo `make run` seeds: a user with one simulator key and one running bot per exchange.

Everything goes through the gateway's HTTP API, as a trader's browser would. `BORSA_HOME/demo.json` remembers what
was made, so a restart creates nothing twice; a new simulator (its accounts live in memory) gets new keys and bots.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import nats

from borsa_proto.exchange import Ticker
from borsa_proto.requests import TickerRequest
from borsa_proto.subjects import ticker
from borsa_runtime.request import request

DEMO_EMAIL = "demo@borsa.local"
# One bot per simulated exchange, each placing orders at once: a DCA bot buys when it starts, a grid bot places
# limit buys on its levels below the price.
DEMO_BOTS = {
    "binance": ("BTC/USDT", "dca"),
    "kraken": ("BTC/USD", "grid"),
    "coinbase": ("BTC/USD", "dca"),
    "kucoin": ("BTC/USDT", "grid"),
}
DEMO_BALANCES = {"quote": "100000", "BTC": "2"}
DCA_PARAMS = {"quote_amount": "20", "interval_seconds": 60}
GRID_LEVELS, GRID_QUOTE_PER_LEVEL, GRID_SPREAD = 6, "25", Decimal("0.03")  # levels from -3 % to +3 % of the price


class ApiFailure(Exception):
    def __init__(self, method: str, url: str, status: int, message: str) -> None:
        super().__init__(f"{method} {urllib.parse.urlsplit(url).path} answered {status}: {message}")
        self.status = status


def call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict | list | None:
    """One JSON request; an ApiFailure with the answer's own message for anything but a 2xx."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            detail = json.loads(text).get("detail", text)
            message = detail.get("message", str(detail)) if isinstance(detail, dict) else str(detail)
        except (ValueError, AttributeError):
            message = text[:300]
        raise ApiFailure(method, url, exc.code, message) from None
    return json.loads(raw) if raw else None


def call_retrying(method: str, url: str, body: dict | None = None, token: str | None = None, wait: float = 20.0):
    """`call`, tried again while the answer is 503 (a connector that has just come up is not discovered yet)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return call(method, url, body, token)
        except ApiFailure as exc:
            if exc.status != 503 or time.monotonic() > deadline:
                raise
        time.sleep(1.0)


class Demo:
    """The demo user's keys and bots, seeded through the gateway's HTTP API and remembered in BORSA_HOME/demo.json.

    The marker holds the user's email and password and, per exchange, the simulator account behind the key (its id
    and API key), the key's id and the bot's id. A run reuses what still exists: a key whose simulator account is
    gone (the embedded simulator keeps its accounts in memory, so every `make run` starts with none) is replaced by
    a new account, key and bot, and the old key and bot are deleted.
    """

    def __init__(self, home: Path, gateway: str, sim_url: str, nats_url: str) -> None:
        self.path = home / "demo.json"
        self.api = f"{gateway}/api/v1"
        self.sim_url = sim_url
        self.nats_url = nats_url
        self.state: dict = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.token = ""

    def save(self) -> None:
        """Written whole and readable by its owner only: it holds the demo user's password."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.path)

    def sign_in(self) -> None:
        email = self.state.setdefault("email", DEMO_EMAIL)
        known = "password" in self.state
        body = {"email": email, "password": self.state.setdefault("password", secrets.token_urlsafe(12))}
        try:  # a user from an earlier run logs in; a new one registers
            self.token = call("POST", f"{self.api}/auth/{'login' if known else 'register'}", body)["access_token"]
        except ApiFailure as exc:
            if known and exc.status == 401:  # a new database: the user is not in it yet
                self.token = call("POST", f"{self.api}/auth/register", body)["access_token"]
            elif not known and exc.status == 409:
                raise RuntimeError(
                    f"{email} already exists in this database but {self.path} does not hold its password: log in "
                    "with yours, or start with a new BORSA_HOME and database"
                ) from None
            else:
                raise
        self.save()

    def seed(self, exchanges: list[str]) -> list[str]:
        """Ensure one key and one bot per exchange; a line for the banner per exchange."""
        self.sign_in()
        keys = {k["id"] for k in call("GET", f"{self.api}/api-keys", token=self.token)}
        bots = {b["id"]: b for b in call("GET", f"{self.api}/bots", token=self.token)}
        seeded = self.state.setdefault("exchanges", {})
        lines = []
        for exchange in exchanges:
            if exchange not in DEMO_BOTS:
                continue
            symbol, strategy = DEMO_BOTS[exchange]
            try:
                entry, made = self.ensure_key(exchange, seeded.get(exchange, {}), keys, bots)
                seeded[exchange] = entry
                self.save()
                bot = bots.get(entry.get("bot_id", ""))
                if "bot_id" not in entry:
                    bot = self.new_bot(exchange, entry["api_key_id"], symbol, strategy)
                    entry["bot_id"] = bot["id"]
                    self.save()  # before the start: a bot that failed to start is not created twice
                    bot = call("POST", f"{self.api}/bots/{bot['id']}/start", token=self.token)
                    made = True
                what = "new" if made else "kept from the last run"
                if bot is None:
                    status = "deleted by you; not seeded again"
                else:
                    status = bot["status"] + (f" ({bot['status_reason']})" if bot.get("status_reason") else "")
                lines.append(
                    f"    {exchange:<9} {symbol:<9} {strategy:<5} bot {entry['bot_id'][:8]} {status}; "
                    f"key {entry['key_hint']} on simulator account {entry['sim_account']} ({what})"
                )
            except Exception as exc:  # one exchange failing leaves the others seeded
                lines.append(f"    {exchange:<9} NOT seeded: {exc}")
        return lines

    def ensure_key(self, exchange: str, entry: dict, keys: set[str], bots: dict) -> tuple[dict, bool]:
        accounts = call("GET", f"{self.sim_url}/_sim/accounts?exchange={exchange}")["accounts"]
        alive = {(a["account_id"], a["api_key"]) for a in accounts}
        if entry.get("api_key_id") in keys and (entry.get("sim_account"), entry.get("sim_api_key")) in alive:
            return entry, False
        # A new simulator (or database): the old key cannot trade any more, so it and its bot go.
        if entry.get("bot_id") in bots:
            call("DELETE", f"{self.api}/bots/{entry['bot_id']}", token=self.token)
        if entry.get("api_key_id") in keys:
            call("DELETE", f"{self.api}/api-keys/{entry['api_key_id']}", token=self.token)
        symbol, _ = DEMO_BOTS[exchange]
        balances = {symbol.split("/")[1]: DEMO_BALANCES["quote"], "BTC": DEMO_BALANCES["BTC"]}
        account = call("POST", f"{self.sim_url}/_sim/accounts", {"exchange": exchange, "balances": balances})
        key = call_retrying(
            "POST",
            f"{self.api}/api-keys",
            {
                "exchange": exchange,
                "label": f"demo: simulated {exchange}",
                "mode": "live",
                "credentials": account["credentials"],
            },
            self.token,
        )
        return {
            "sim_account": account["account_id"],
            "sim_api_key": account["credentials"]["apiKey"],  # not the secret: it tells a new simulator's accounts
            "api_key_id": key["id"],
            "key_hint": key["key_hint"],
        }, True

    def new_bot(self, exchange: str, key_id: str, symbol: str, strategy: str) -> dict:
        params = DCA_PARAMS if strategy == "dca" else self.grid_params(exchange, symbol)
        body = {"api_key_id": key_id, "symbol": symbol, "strategy": strategy, "params": params}
        return call_retrying("POST", f"{self.api}/bots", body, self.token)

    def grid_params(self, exchange: str, symbol: str) -> dict:
        """Six levels from 3 % below to 3 % above the current price, on the market's price tick."""
        markets = call_retrying(
            "GET", f"{self.api}/exchanges/{exchange}/markets?" + urllib.parse.urlencode({"search": symbol})
        )
        tick = Decimal(next(m for m in markets if m["symbol"] == symbol)["precision"]["price"])
        price = asyncio.run(self.price(exchange, symbol))
        low = (price * (1 - GRID_SPREAD) / tick).to_integral_value(ROUND_FLOOR) * tick
        high = (price * (1 + GRID_SPREAD) / tick).to_integral_value(ROUND_CEILING) * tick
        return {
            "low": format(low, "f"),
            "high": format(high, "f"),
            "levels": GRID_LEVELS,
            "quote_per_level": GRID_QUOTE_PER_LEVEL,
        }

    async def price(self, exchange: str, symbol: str) -> Decimal:
        """The last price from the exchange's connector (the gateway serves markets but not tickers)."""
        nc = await nats.connect(self.nats_url)
        try:
            found = await request(nc, ticker(exchange), TickerRequest(symbol=symbol), Ticker, timeout=10)
        finally:
            await nc.close()
        price = found.last or found.ask or found.bid
        if not price:
            raise RuntimeError(f"{exchange} has no price for {symbol} yet")
        return price


def seed_demo_lines(home: Path, gateway: str, sim_url: str, nats_url: str, exchanges: list[str]) -> list[str]:
    """The banner's demo lines; a failure is said there and leaves the platform running."""
    demo = Demo(home, gateway, sim_url, nats_url)
    try:
        bots = demo.seed(exchanges)
    except Exception as exc:
        message = f"demo NOT seeded: {exc}"
        print(message, file=sys.stderr, flush=True)
        return [f"  {message} (the platform runs without it)"]
    return [
        f"  demo user: {demo.state['email']}  password: {demo.state['password']}  (kept in {demo.path})",
        "  demo bots, on simulator accounts stored as live keys:",
        *bots,
    ]


# -- the processes ---------------------------------------------------------------------------------------------------
