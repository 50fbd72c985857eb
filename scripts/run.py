"""`make run`: the whole platform on one machine with embedded defaults, supervised by honcho.

Starts (unless the environment points at running ones) a nats-server with JetStream and a Postgres cluster
under the state folder, applies the migrations, then the exchange simulator, one connector per simulated
exchange, the bot runner, reporting and the gateway, each on a free loopback port (the gateway on
BORSA_HTTP_PORT, default 8000). Once every service answers it seeds the demo (a user with one simulator key and
one running bot per exchange, all through the gateway's HTTP API) and prints
`Borsa is up: http://127.0.0.1:<port>`; Ctrl-C or SIGTERM stops everything it started, the services first.

Environment: BORSA_HOME (state folder, default .run/), BORSA_HTTP_PORT, NATS_URL, DATABASE_URL,
BORSA_SIM_URL, BORSA_EXCHANGES.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import threading
import time
import urllib.request
from pathlib import Path

from demo import seed_demo_lines  # scripts/demo.py, beside this file
from honcho.manager import Manager

from borsa_db import migrate
from borsa_runtime.sealing import generate_keypair, public_key_of
from borsa_testing.processes import find_binary, free_port, start_postgres

ROOT = Path(__file__).resolve().parents[1]
PY = shlex.quote(sys.executable)
EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")

# What the services stand on: stopped once they have stopped (honcho would stop everything at once).
INFRASTRUCTURE = ("nats", "sim")
INFRASTRUCTURE_GRACE = 4.0  # seconds; honcho kills whatever still runs 5 s after the first process stopped


class Supervisor(Manager):
    """honcho's Manager, stopping the services before NATS and the simulator.

    The services then stop while NATS still answers (connectors finish the requests in flight, the runner hands its
    bots back) instead of reconnecting to a server that is gone until honcho kills them. honcho 2 has no ordering
    of its own: this overrides its `_killall`.
    """

    def _killall(self, force: bool = False) -> None:
        if force:
            super()._killall(force=True)
            return
        self._signal(lambda name: name not in INFRASTRUCTURE)
        threading.Thread(target=self._stop_infrastructure, daemon=True).start()

    def _signal(self, which) -> None:
        for name, process in self._processes.items():
            if which(name) and "returncode" not in process and process.get("pid"):
                self._system_print(f"sending SIGTERM to {name} (pid {process['pid']})\n")
                self._procmgr.terminate(process["pid"])

    def _stop_infrastructure(self) -> None:
        deadline = time.monotonic() + INFRASTRUCTURE_GRACE
        services = [p for name, p in self._processes.items() if name not in INFRASTRUCTURE]
        while time.monotonic() < deadline and any("returncode" not in p for p in services):
            time.sleep(0.1)
        self._signal(lambda name: name in INFRASTRUCTURE)


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.load(response)
    except Exception:
        return None


def announce_when_ready(
    manager: Manager,
    gateway: str,
    sim_url: str,
    nats_url: str,
    connectors: dict[str, int],
    runner_port: int,
    reporting_port: int,
    home: Path,
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        sim_up = _get(f"{sim_url}/_sim/health") is not None
        gateway_up = (_get(f"{gateway}/api/v1/health") or {}).get("status") == "ok"
        runner_up = (_get(f"http://127.0.0.1:{runner_port}/readyz") or {}).get("ready")
        reporting_up = (_get(f"http://127.0.0.1:{reporting_port}/readyz") or {}).get("ready")
        ready = [ex for ex, port in connectors.items() if (_get(f"http://127.0.0.1:{port}/readyz") or {}).get("ready")]
        if sim_up and gateway_up and runner_up and reporting_up and len(ready) == len(connectors):
            demo = seed_demo_lines(home, gateway, sim_url, nats_url, list(connectors))
            lines = [
                f"Borsa is up: {gateway}",
                f"  API: {gateway}/api/v1   OpenAPI: {gateway}/docs",
                f"  exchanges (simulated): {sim_url}/<exchange>/...   admin: {sim_url}/_sim/health",
                f"  NATS: {nats_url}   connectors: {', '.join(connectors)}",
                *(f"  {ex} connector ops: http://127.0.0.1:{port}/metrics" for ex, port in connectors.items()),
                f"  bot runner ops: http://127.0.0.1:{runner_port}/metrics",
                f"  reporting ops: http://127.0.0.1:{reporting_port}/metrics   "
                "reports on NATS: borsa.reports.summary|orders|trades",
                *demo,
                "  Ctrl-C stops everything.",
            ]
            print("\n".join(lines), flush=True)
            return
        time.sleep(0.5)
    print("Borsa did not come up within 180 s; see the log lines above.", file=sys.stderr, flush=True)
    manager.terminate()


# -- the demo ------------------------------------------------------------------------------------------------------
def main() -> int:
    home = Path(os.environ.get("BORSA_HOME", ROOT / ".run")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    exchanges = [e for e in os.environ.get("BORSA_EXCHANGES", ",".join(EXCHANGES)).split(",") if e]
    manager = Supervisor()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        port = free_port()
        nats_url = f"nats://127.0.0.1:{port}"
        store = home / "nats"
        store.mkdir(exist_ok=True)
        binary = find_binary("nats-server", ("/usr/sbin", "/usr/local/bin"))
        manager.add_process("nats", f"{binary} -js -a 127.0.0.1 -p {port} -sd {shlex.quote(str(store))}", env=env)

    sim_url = os.environ.get("BORSA_SIM_URL")
    if not sim_url:
        port = free_port()
        sim_url = f"http://127.0.0.1:{port}"
        seed = os.environ.get("BORSA_SIM_SEED", "0")
        manager.add_process("sim", f"{PY} -m borsa_sim --host 127.0.0.1 --port {port} --seed {seed}", env=env)

    postgres = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        postgres = start_postgres(home / "postgres")
        database_url = postgres.dsn("borsa")
    try:
        asyncio.run(migrate(database_url))
        private, public = sealing_keys(home)
        connectors = {}
        for exchange in exchanges:
            port = free_port()
            connectors[exchange] = port
            child = {
                **env,
                "NATS_URL": nats_url,
                "BORSA_SIM_URL": sim_url,
                "BORSA_CONNECTOR_HTTP_PORT": str(port),
                "DATABASE_URL": database_url,
                "BORSA_SEALING_KEY": private,
            }
            manager.add_process(f"{exchange}", f"{PY} -m borsa_connector --exchange {exchange}", env=child)
        runner_port = free_port()
        manager.add_process(
            "runner",
            f"{PY} -m borsa_runner",
            env={**env, "NATS_URL": nats_url, "DATABASE_URL": database_url, "BORSA_RUNNER_HTTP_PORT": str(runner_port)},
        )
        reporting_port = free_port()
        manager.add_process(
            "reporting",
            f"{PY} -m borsa_reporting",
            env={
                **env,
                "NATS_URL": nats_url,
                "DATABASE_URL": database_url,
                "BORSA_REPORTING_HTTP_PORT": str(reporting_port),
            },
        )
        http_port = int(os.environ.get("BORSA_HTTP_PORT", "8000"))
        if not port_is_free(http_port):
            print(f"port {http_port} is taken; set BORSA_HTTP_PORT to choose another", file=sys.stderr)
            return 2
        gateway = f"http://127.0.0.1:{http_port}"
        manager.add_process(
            "gateway",
            f"{PY} -m borsa_gateway",
            env={
                **env,
                "NATS_URL": nats_url,
                "DATABASE_URL": database_url,
                "BORSA_HTTP_PORT": str(http_port),
                "BORSA_SEALING_PUBLIC_KEY": public,
                "BORSA_EXCHANGES": ",".join(exchanges),
            },
        )
        threading.Thread(
            target=announce_when_ready,
            args=(manager, gateway, sim_url, nats_url, connectors, runner_port, reporting_port, home),
            daemon=True,
        ).start()
        manager.loop()
        return manager.returncode or 0
    finally:
        if postgres is not None:
            postgres.stop()


def sealing_keys(home: Path) -> tuple[str, str]:
    """The demo's connector key pair, kept in the state folder (readable by its owner only)."""
    path = home / "sealing.key"
    if not path.exists():
        private, _ = generate_keypair()
        path.write_text(private)
        path.chmod(0o600)
    private = path.read_text().strip()
    return private, public_key_of(private)


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        # As the gateway binds (uvicorn sets SO_REUSEADDR): connections of a previous run in TIME_WAIT do not
        # hold the port, a listening server does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
