"""`make run` (scripts/run.py) brings the platform up offline, answers on the bus, and stops what it started."""

from __future__ import annotations

import asyncio
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
from borsa_runtime.request import request
from borsa_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


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
        started = children_of(proc.pid)
        assert len(started) >= 8  # postgres, nats, simulator, four connectors, gateway (and shells)
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
