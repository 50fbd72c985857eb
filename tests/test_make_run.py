"""`make run` (scripts/run.py) brings the platform up offline, answers on the bus, seeds the demo (a user with a key
and a running bot per simulated exchange, through the gateway) whose bots place orders at once, reports those orders'
fills, and stops what it started."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from borsa_proto import requests as rq
from borsa_proto.exchange import Describe, Ticker
from borsa_proto.reports import ReportRequest, SummaryReply
from borsa_proto.subjects import reports
from borsa_runtime.request import request
from borsa_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
DCA_EXCHANGES = ("binance", "coinbase")  # the demo's DCA bots buy at market when they start: fills at once
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def call(method: str, url: str, body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as response:
        return json.load(response)


def demo_script():
    """scripts/demo.py as a module, for its seeding (the platform it seeds is the one under test)."""
    spec = importlib.util.spec_from_file_location("borsa_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Demo:
    """What the demo user sees through the gateway."""

    def __init__(self, gateway: str, email: str, password: str) -> None:
        self.api = f"{gateway}/api/v1"
        self.token = call("POST", f"{self.api}/auth/login", {"email": email, "password": password})["access_token"]

    def keys(self) -> dict[str, dict]:
        keys = call("GET", f"{self.api}/api-keys", token=self.token)
        assert sorted(k["exchange"] for k in keys) == sorted(EXCHANGES), keys  # one per exchange
        assert {k["mode"] for k in keys} == {"live"}
        return {k["exchange"]: k for k in keys}

    def bots(self) -> dict[str, dict]:
        bots = call("GET", f"{self.api}/bots", token=self.token)
        assert sorted(b["exchange"] for b in bots) == sorted(EXCHANGES), bots
        return {b["exchange"]: b for b in bots}

    def user_id(self) -> str:
        """The user the gateway signed the token for (its `sub` claim): reports are scoped to it."""
        payload = self.token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


async def report_summary(nats_url: str, user_id: str) -> SummaryReply:
    """`borsa.reports.summary` per exchange, as the gateway asks for it."""
    nc = await nats.connect(nats_url)
    try:
        req = ReportRequest(user_id=user_id, group_by="exchange")
        return await request(nc, reports("summary"), req, SummaryReply, timeout=10)
    finally:
        await nc.close()


def children_of(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    parents: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(x) for x in line.split())
        parents.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_make_run_starts_everything_and_stops_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "BORSA_SIM_URL", "DATABASE_URL")}
    # Postgres runs as an unprivileged user, who must be able to reach the state folder: not under pytest's
    # private tmp_path.
    home = Path(tempfile.mkdtemp(prefix="borsa-home-"))
    home.chmod(0o755)
    env["BORSA_HOME"] = str(home)
    env["BORSA_HTTP_PORT"] = str(free_port())
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines[-30:])
            lines.append(line)
            if line.startswith("Borsa is up: "):
                break
        text = "".join(lines)
        assert "Borsa is up: http://127.0.0.1:" in text, text[-3000:]
        # Read the rest of the banner.
        while "Ctrl-C stops everything" not in lines[-1]:
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        nats_url = re.search(r"NATS: (nats://127\.0\.0\.1:\d+)", text).group(1)
        assert "(rc=" not in text  # nothing died on the way up

        async def ask() -> None:
            nc = await nats.connect(nats_url)
            try:
                for exchange in ("binance", "kraken", "coinbase", "kucoin"):
                    describe = await request(nc, f"borsa.exchange.{exchange}.describe", rq.DescribeRequest(), Describe)
                    assert describe.mode == "sim" and describe.markets_count >= 20
                ticker = await request(nc, "borsa.exchange.kraken.ticker", rq.TickerRequest(symbol="XBTUSD"), Ticker)
                assert ticker.market_id == "XXBTZUSD"
            finally:
                await nc.close()

        asyncio.run(ask())
        gateway = re.search(r"Borsa is up: (http://127\.0\.0\.1:\d+)", text).group(1)
        assert gateway.endswith(env["BORSA_HTTP_PORT"])
        with urllib.request.urlopen(f"{gateway}/api/v1/health") as response:
            assert json.load(response)["checks"] == {"nats": True, "postgres": True}
        with urllib.request.urlopen(f"{gateway}/") as response:  # the web app, with no build step
            assert response.headers["Content-Type"].startswith("text/html")
            assert b"Borsa" in response.read()

        # The bot runner answers on its ops port.
        runner = re.search(r"bot runner ops: (http://127\.0\.0\.1:\d+)/metrics", text).group(1)
        assert call("GET", f"{runner}/readyz")["ready"] is True
        # So does reporting.
        reporting = re.search(r"reporting ops: (http://127\.0\.0\.1:\d+)/metrics", text).group(1)
        assert call("GET", f"{reporting}/readyz")["ready"] is True

        # The demo: its user logs in and has a live key and a running bot on each simulated exchange...
        email, password = re.search(r"demo user: (\S+)  password: (\S+)", text).groups()
        assert email == "demo@borsa.local"
        assert "NOT seeded" not in text
        demo = Demo(gateway, email, password)
        keys, bots = demo.keys(), demo.bots()
        for exchange in EXCHANGES:
            assert bots[exchange]["status"] == "running", bots[exchange]
            assert bots[exchange]["api_key_id"] == keys[exchange]["id"]
        assert {b["strategy"] for b in bots.values()} == {"dca", "grid"}

        # ... whose orders reach the simulator, on the simulator accounts behind the keys.
        sim = re.search(r"exchanges \(simulated\): (http://127\.0\.0\.1:\d+)/", text).group(1)
        marker = json.loads((home / "demo.json").read_text())
        assert marker["email"] == email and marker["password"] == password
        accounts = {ex: marker["exchanges"][ex]["sim_account"] for ex in EXCHANGES}
        deadline = time.monotonic() + 60
        orders: dict[str, list] = {}
        while time.monotonic() < deadline:
            orders = {
                ex: call("GET", f"{sim}/_sim/orders?exchange={ex}&account={accounts[ex]}")["orders"] for ex in EXCHANGES
            }
            if all(orders.values()):
                break
            time.sleep(1)
        assert all(orders.values()), {ex: len(found) for ex, found in orders.items()}

        # ... and whose fills reach the reports: the connectors' order events, through reporting's durable
        # consumer, into the demo user's summary per exchange.
        user_id = demo.user_id()
        deadline = time.monotonic() + 60
        filled: dict[str, int] = {}
        while time.monotonic() < deadline:
            summary = asyncio.run(report_summary(nats_url, user_id))
            assert summary.group_by == "exchange"
            filled = {}
            for row in summary.rows:
                filled[row.exchange] = filled.get(row.exchange, 0) + row.fills
            if all(filled.get(ex, 0) > 0 for ex in DCA_EXCHANGES):
                break
            time.sleep(1)
        assert all(filled.get(ex, 0) > 0 for ex in DCA_EXCHANGES), (filled, summary)
        assert set(filled) <= set(EXCHANGES), filled
        for row in summary.rows:
            if row.exchange in DCA_EXCHANGES:
                assert row.orders > 0 and row.volume > 0, row  # the DCA buys, in the quote currency

        # Seeding again creates nothing twice; a simulator account that is gone (a new simulator) gets a new
        # account, key and bot in place of the old ones.
        run = demo_script()
        lines = run.seed_demo_lines(home, gateway, sim, nats_url, list(EXCHANGES))
        assert sum("kept from the last run" in line for line in lines) == len(EXCHANGES), lines
        assert demo.keys() == keys and demo.bots() == bots
        marker["exchanges"]["kraken"]["sim_api_key"] = "from-a-simulator-that-stopped"
        (home / "demo.json").write_text(json.dumps(marker))
        lines = run.seed_demo_lines(home, gateway, sim, nats_url, list(EXCHANGES))
        assert sum("kept from the last run" in line for line in lines) == len(EXCHANGES) - 1, lines
        assert any(line.split()[0] == "kraken" and line.endswith("(new)") for line in lines), lines
        renewed_keys, renewed_bots = demo.keys(), demo.bots()
        assert renewed_keys["kraken"]["id"] != keys["kraken"]["id"]
        assert renewed_bots["kraken"]["id"] != bots["kraken"]["id"]
        assert renewed_bots["kraken"]["status"] == "running"
        assert {ex: renewed_bots[ex] for ex in EXCHANGES if ex != "kraken"} == {
            ex: bots[ex] for ex in EXCHANGES if ex != "kraken"
        }

        started = children_of(proc.pid)
        # postgres, nats, simulator, four connectors, the bot runner, reporting, gateway (and shells)
        assert len(started) >= 10
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise

    def running(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().split()[2] != "Z"  # a zombie is gone, only not yet reaped

    deadline = time.monotonic() + 30
    while any(running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in started if running(pid)]
    assert alive == [], f"left running: {alive}"
