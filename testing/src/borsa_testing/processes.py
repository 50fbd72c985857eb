"""Start real server processes on free loopback ports and tear them down: nats-server, Postgres, borsa-sim.

Used by the pytest fixtures (plugin.py) and by `make run` alike, so both start servers the same way.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(RuntimeError):
    """A server binary is missing or did not come up; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    proc: subprocess.Popen | None = None,
    what: str = "server",
    log_path: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"{what} exited with code {proc.returncode} before listening{_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s{_tail(log_path)}")


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last log lines ---\n" + "\n".join(text)


def find_binary(name: str, extra_dirs: tuple[str, ...] = ()) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise ServerError(f"{name} not found on PATH or in {list(extra_dirs)}; install it (see .ci/run)")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    _reap(proc, timeout)


def _reap(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait for a process told to stop; kill it after `timeout`."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def stop_together(servers) -> None:
    """Stop started servers (anything with `.proc`) at once: every one is told to stop before any is waited for,
    so that their graceful shutdowns overlap instead of adding up."""
    procs = [server.proc for server in servers if server.proc.poll() is None]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _reap(proc)


# -- NATS ----------------------------------------------------------------------------------------------------
@dataclass
class NatsServer:
    url: str
    port: int
    store: Path
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def start_nats(workdir: Path | None = None, port: int | None = None, timeout: float = 20.0) -> NatsServer:
    """A real `nats-server -js` on a free port with its JetStream store in a temporary folder."""
    binary = find_binary("nats-server", ("/usr/sbin", "/usr/local/bin"))
    workdir = Path(workdir or tempfile.mkdtemp(prefix="borsa-nats-"))
    store = workdir / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "nats.log"
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store), "-l", str(log_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout, proc, "nats-server", log_path)
    except Exception:
        _stop(proc, signal.SIGKILL)
        raise
    return NatsServer(f"nats://127.0.0.1:{port}", port, store, proc, log_path)


# -- Postgres ------------------------------------------------------------------------------------------------
PG_DIRS = tuple(sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True))


def _unprivileged_user() -> str | None:
    """Postgres refuses to run as root: pick an unprivileged account to own the cluster."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServerError("running as root and neither a 'postgres' nor a 'nobody' user exists to run Postgres")


@dataclass
class PostgresServer:
    url: str
    port: int
    datadir: Path
    proc: subprocess.Popen
    log_path: Path
    user: str = "borsa"
    extra: dict = field(default_factory=dict)

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # fast shutdown

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def start_postgres(workdir: Path | None = None, port: int | None = None, timeout: float = 60.0) -> PostgresServer:
    """A throwaway cluster: initdb into a temporary folder, then postgres on a free loopback port.

    Tuned for tests (fsync off): a crashed test run loses nothing of value.
    """
    initdb = find_binary("initdb", PG_DIRS)
    postgres = find_binary("postgres", PG_DIRS)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="borsa-pg-"))
    datadir = workdir / "data"
    sockdir = workdir / "sock"
    log_path = workdir / "postgres.log"
    owner = _unprivileged_user()
    sockdir.mkdir(parents=True, exist_ok=True)
    if owner:
        info = pwd.getpwnam(owner)
        for path in (workdir, sockdir):
            os.chown(path, info.pw_uid, info.pw_gid)
        os.chmod(workdir, 0o755)
    if not (datadir / "PG_VERSION").exists():
        result = subprocess.run(
            [initdb, "-D", str(datadir), "-U", "borsa", "--auth=trust", "-E", "UTF8", "--no-sync"],
            user=owner,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            hint = ""
            if owner and "Permission denied" in result.stderr:
                hint = (
                    f"; Postgres runs as the unprivileged user {owner!r}, who must be able to reach {workdir}: "
                    "choose a state folder outside private (0700) folders"
                )
            raise ServerError(f"initdb failed ({result.returncode}): {result.stderr.strip()}{hint}")
    port = port or free_port()
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    if owner:
        os.chown(log_path, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    proc = subprocess.Popen(
        [
            postgres,
            "-D",
            str(datadir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sockdir),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ],
        user=owner,
        stdout=log_file,
        stderr=log_file,
        start_new_session=True,
    )
    log_file.close()
    try:
        wait_for_port("127.0.0.1", port, timeout, proc, "postgres", log_path)
        _wait_pg_ready(port, sockdir, timeout, proc, log_path)
    except Exception:
        _stop(proc, signal.SIGKILL)
        raise
    return PostgresServer(f"postgresql://borsa@127.0.0.1:{port}/postgres", port, datadir, proc, log_path)


def _wait_pg_ready(port: int, sockdir: Path, timeout: float, proc: subprocess.Popen, log_path: Path) -> None:
    """Postgres listens before it accepts connections ("the database system is starting up")."""
    isready = shutil.which("pg_isready") or next(
        (str(Path(d) / "pg_isready") for d in PG_DIRS if (Path(d) / "pg_isready").exists()), None
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"postgres exited with code {proc.returncode}{_tail(log_path)}")
        if isready is None:
            return
        if (
            subprocess.run(
                [isready, "-h", "127.0.0.1", "-p", str(port), "-U", "borsa", "-d", "postgres"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise ServerError(f"postgres did not accept connections within {timeout:.0f}s{_tail(log_path)}")


# -- the exchange simulator ----------------------------------------------------------------------------------
@dataclass
class SimServer:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def start_sim(*args: str, workdir: Path | None = None, timeout: float = 30.0) -> SimServer:
    """`borsa-sim --port 0 <args>`; the simulator prints its URL as its first line."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="borsa-sim-"))
    log_path = workdir / "sim.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "borsa_sim", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=log_file,
        start_new_session=True,
        text=True,
    )
    log_file.close()
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise ServerError(f"borsa-sim exited with code {proc.returncode}{_tail(log_path)}")
            continue
        if "listening on " in line:
            url = line.rsplit("listening on ", 1)[1].strip()
            break
    if url is None:
        _stop(proc, signal.SIGKILL)
        raise ServerError(f"borsa-sim did not report its URL within {timeout:.0f}s{_tail(log_path)}")
    # Keep draining stdout so the child never blocks on a full pipe.
    _drain(proc, workdir / "sim.stdout")
    _wait_http(url + "/_sim/health", timeout, proc, log_path)
    return SimServer(url, proc, log_path)


def _drain(proc: subprocess.Popen, path: Path) -> None:
    import threading

    def pump() -> None:
        with open(path, "a") as out:
            for line in proc.stdout:
                out.write(line)

    threading.Thread(target=pump, daemon=True).start()


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"process exited with code {proc.returncode}{_tail(log_path)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise ServerError(f"{url} did not answer within {timeout:.0f}s{_tail(log_path)}")


# -- the services that print `<name> ... ready; ops on <url>` ---------------------------------------------------
@dataclass
class ServiceProcess:
    """A Borsa service started by this harness, with its ops URL (/metrics, /health) and its log."""

    ops_url: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


@dataclass
class ConnectorProcess(ServiceProcess):
    exchange: str = ""


class ReportingProcess(ServiceProcess):
    pass


class RunnerProcess(ServiceProcess):
    pass


def _start_service(
    module: str,
    name: str,
    env: dict[str, str],
    *,
    args: tuple[str, ...] = (),
    workdir: Path | None,
    timeout: float,
) -> tuple[subprocess.Popen, str, Path]:
    """`python -m <module> [args] --http-port 0` with `env` over this process's environment and JSON logs, in
    `workdir` (a new temporary folder by default); (process, ops url, log) once it reports ready."""
    slug = name.removeprefix("borsa-").replace(" ", "-")
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"borsa-{slug}-"))
    child_env = {**os.environ, "LOG_FORMAT": "json", **env}
    return _start_until_ready(
        [sys.executable, "-m", module, *args, "--http-port", "0"],
        child_env,
        name,
        workdir / f"{slug.split('-')[0]}.log",
        timeout,
    )


def start_connector(
    exchange: str,
    nats_url: str,
    sim_url: str | None,
    *,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ConnectorProcess:
    """`borsa-connector --exchange <ex>` against NATS (and the simulator); returns once it reports ready."""
    child_env = {"NATS_URL": nats_url, **({"BORSA_SIM_URL": sim_url} if sim_url else {}), **(env or {})}
    started = _start_service(
        "borsa_connector",
        f"borsa-connector {exchange}",
        child_env,
        args=("--exchange", exchange),
        workdir=workdir,
        timeout=timeout,
    )
    return ConnectorProcess(started[1], started[0], started[2], exchange)


def _start_until_ready(
    command: list[str], env: dict[str, str], name: str, log_path: Path, timeout: float
) -> tuple[subprocess.Popen, str, Path]:
    """Start a service that prints `<name> ... ready; ops on <url>`; (process, ops url, log) once it has."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True, text=True
    )
    deadline = time.monotonic() + timeout
    ops_url = None
    with open(log_path, "a") as log:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    raise ServerError(f"{name} exited with code {proc.returncode}{_tail(log_path)}")
                continue
            log.write(line)
            if line.startswith(name) and " ready" in line and "ops on " in line:
                ops_url = line.rsplit("ops on ", 1)[1].strip()
                break
    if ops_url is None:
        _stop(proc, signal.SIGKILL)
        raise ServerError(f"{name} was not ready within {timeout:.0f}s{_tail(log_path)}")
    _drain(proc, log_path)
    return proc, ops_url, log_path


def start_reporting(
    nats_url: str,
    database_url: str,
    *,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ReportingProcess:
    """`borsa-reporting` against NATS and Postgres; returns once it reports ready."""
    child_env = {"NATS_URL": nats_url, "DATABASE_URL": database_url, **(env or {})}
    proc, ops_url, log_path = _start_service(
        "borsa_reporting", "borsa-reporting", child_env, workdir=workdir, timeout=timeout
    )
    return ReportingProcess(ops_url, proc, log_path)


def start_runner(
    nats_url: str,
    database_url: str,
    *,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> RunnerProcess:
    """`borsa-runner` against NATS and Postgres; returns once it reports ready."""
    child_env = {"NATS_URL": nats_url, "DATABASE_URL": database_url, **(env or {})}
    proc, ops_url, log_path = _start_service(
        "borsa_runner", "borsa-runner", child_env, workdir=workdir, timeout=timeout
    )
    return RunnerProcess(ops_url, proc, log_path)


# -- the gateway ---------------------------------------------------------------------------------------------
@dataclass
class GatewayProcess:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        _stop(self.proc)


def start_gateway(
    nats_url: str,
    database_url: str,
    *,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
    timeout: float = 60.0,
) -> GatewayProcess:
    """`borsa-gateway` on a free port; returns once /api/v1/health answers."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="borsa-gateway-"))
    log_path = workdir / "gateway.log"
    port = free_port()
    child_env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "BORSA_HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        **(env or {}),
    }
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "borsa_gateway"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=child_env,
        start_new_session=True,
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/api/v1/health", timeout, proc, log_path)
    except Exception:
        _stop(proc, signal.SIGKILL)
        raise
    return GatewayProcess(url, proc, log_path)
