"""Images and Kubernetes manifests stay consistent with the services they run (STYLE.md: each service folder is its
image name, its `app:` label and its Deployment name). No YAML parser is installed, so structure is read from text.

One integration test runs a nats-server with the users and permissions of `nats.yaml` and the real bot runner and
reporting logged in as their users: a subject a service needs and its user may not use only shows up there, or in
production.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shutil
import subprocess
import textwrap
import tomllib
import uuid
from decimal import Decimal
from pathlib import Path
from secrets import token_hex
from typing import NamedTuple

import asyncpg
import pytest
from nats import connect as nats_connect

from borsa_proto import encode
from borsa_proto.orders import Fill, Order, OrderEvent, OrderStatus, Side
from borsa_proto.reports import ReportRequest, SummaryReply
from borsa_proto.subjects import BOTS_CHANGED, ORDERS_STREAM, order_events, reports
from borsa_reporting.settings import ReportingSettings
from borsa_runtime.request import request
from borsa_testing.processes import find_binary, free_port, start_reporting, wait_for_port
from borsa_testing.trading import store_key

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")


class Ops(NamedTuple):
    """What a service's container answers on."""

    port: int | None
    liveness: str | None  # None: a tcpSocket probe on the port
    readiness: str
    healthcheck: str | None  # the path the Dockerfile's HEALTHCHECK fetches


OPS = {
    "exchange-connector": Ops(8080, "/healthz", "/readyz", "/healthz"),
    "exchange-sim": Ops(8900, "/_sim/health", "/_sim/health", "/_sim/health"),
    # /api/v1/health is 503 while Postgres or NATS is down: a reason to take a replica out, not to restart it.
    "gateway": Ops(8000, None, "/api/v1/health", "/api/v1/health"),
    "bot-runner": Ops(8080, "/healthz", "/readyz", "/healthz"),
    "reporting": Ops(8080, "/healthz", "/readyz", "/healthz"),
}
DEFAULT_OPS = Ops(None, "/healthz", "/readyz", None)
# Workspace members an image carries besides its service's own dependencies: the gateway runs borsa-migrate.
EXTRA_PACKAGES = {"gateway": ("borsa-db",)}
NOT_APPLIED = {"kustomization.yaml", "secrets.example.yaml"}
# Tests that name no tier are unit tests (the testing plugin marks them); the NATS one below is an integration test.


def documents(path: Path) -> list[str]:
    return [doc for doc in re.split(r"^---$", path.read_text(), flags=re.M) if re.search(r"^kind: ", doc, re.M)]


def kind_and_name(doc: str) -> tuple[str, str]:
    kind = re.search(r"^kind: (\S+)$", doc, re.M)
    name = re.search(r"^metadata:\n(?: {2}.*\n)*? {2}name: (\S+)$", doc, re.M)
    assert kind and name, doc
    return kind.group(1), name.group(1)


def block(text: str, key: str) -> str:
    """The lines nested under the first `key:` line, by indentation."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip(" -").startswith(f"{key}:"):
            indent = len(line) - len(line.lstrip(" -"))
            nested = []
            for following in lines[i + 1 :]:
                if following.strip() and len(following) - len(following.lstrip(" ")) <= indent:
                    break
                nested.append(following)
            return "\n".join(nested)
    raise AssertionError(f"no `{key}:` in\n{text}")


def yaml_list(text: str, key: str) -> list[str]:
    """Items of a block list of scalars (`key:` then `  - item` lines), comments skipped."""
    return [m.group(1) for m in re.finditer(r"^\s*- ([^#\s]\S*)\s*$", block(text, key), re.M)]


def manifest_of(service: str) -> Path:
    for path in (K8S / f"{service}.yaml", K8S / service / f"{service}.yaml"):
        if path.exists():
            return path
    raise AssertionError(f"services/{service}/ has no manifest: add deploy/k8s/{service}.yaml (STYLE.md, Layout)")


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def key_refs(text: str, kind: str) -> list[tuple[str, str]]:
    """(name, key) of every `secretKeyRef` or `configMapKeyRef`."""
    refs = []
    for ref in re.finditer(rf"{kind}:\n((?:\s+\w+: \S+\n){{2}})", text):
        fields = dict(re.findall(r"(\w+): (\S+)", ref.group(1)))
        refs.append((fields["name"], fields["key"]))
    return refs


def env_ref(text: str, variable: str) -> tuple[str, str, str]:
    """(secretKeyRef or configMapKeyRef, name, key) that the environment variable is read from."""
    ref = re.search(
        rf"- name: {variable}\n\s+valueFrom:\n\s+(secretKeyRef|configMapKeyRef):\n\s+name: (\S+)\n\s+key: (\S+)\n", text
    )
    assert ref, f"{variable} is not read from a Secret or ConfigMap"
    return ref.group(1), ref.group(2), ref.group(3)


def test_there_are_services() -> None:
    assert {"exchange-connector", "exchange-sim"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_dockerfile_running_its_command(service: str) -> None:
    folder = ROOT / "services" / service
    dockerfile = folder / "Dockerfile"
    assert dockerfile.exists(), f"services/{service}/ has no Dockerfile"
    text = dockerfile.read_text()
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    (script,) = project["scripts"]

    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and json.loads(cmd.group(1))[0] == script
    # Only this member and its dependencies, from the lock as it is, without dev tools, as wheels.
    syncs = re.findall(r"^\s+(uv sync .*)$", text, re.M)
    assert len(syncs) == 2
    assert all(f"--frozen --no-dev --package {project['name']} " in s and "--no-editable" in s for s in syncs)
    assert "--no-install-workspace" in syncs[0]
    for extra in EXTRA_PACKAGES.get(service, ()):
        assert all(f"--package {extra} " in s for s in syncs), extra
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\}", text, re.M)) == 2  # build stage and runtime stage
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}

    ops = OPS.get(service, DEFAULT_OPS)
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)$", text, re.M | re.S)
    assert healthcheck and "urllib.request" in healthcheck.group(0)
    if ops.port:
        assert re.search(rf"^EXPOSE {ops.port}$", text, re.M)
    if ops.healthcheck:
        assert ops.healthcheck in healthcheck.group(0)


def test_dockerignore_keeps_local_state_out_and_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        """Docker's rule, roughly: a pattern excludes what it matches and everything inside it."""
        parts = path.split("/")
        for end in range(1, len(parts) + 1):
            for pattern in patterns:
                if pattern.startswith("**/"):
                    tails = ("/".join(parts[start:end]) for start in range(end))
                    if any(fnmatch.fnmatchcase(tail, pattern[3:]) for tail in tails):
                        return True
                elif fnmatch.fnmatchcase("/".join(parts[:end]), pattern):
                    return True
        return False

    for path in (".venv/bin/python", ".run/nats/x", ".git/HEAD", ".pytest_cache/v", "proto/src/a/__pycache__/m.pyc"):
        assert ignored(path), path
    for path in ("pyproject.toml", "uv.lock", "proto/pyproject.toml", "runtime/src/borsa_runtime/bus.py"):
        assert not ignored(path), path
    for service in SERVICES:
        assert not ignored(f"services/{service}/pyproject.toml")
        assert not ignored(f"services/{service}/src/x.py")


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_manifest_is_deployment_service_and_serviceaccount(service: str) -> None:
    path = manifest_of(service)
    resources = [kind_and_name(doc) for doc in documents(path)]
    assert {"Deployment", "Service", "ServiceAccount"} <= {kind for kind, _ in resources}, path
    # Named after the folder (per-exchange connectors get their suffix from kustomize).
    assert {name for _, name in resources} == {service}, resources
    text = path.read_text()
    assert re.search(rf"^\s+app: {service}$", text, re.M)
    # The image name is the folder name (an initContainer runs the same image).
    assert set(re.findall(r"^\s+image: (\S+)$", text, re.M)) == {service}
    assert f"serviceAccountName: {service}" in text


@pytest.mark.parametrize("service", SERVICES)
def test_probes_point_at_the_ops_endpoints(service: str) -> None:
    text = manifest_of(service).read_text()
    ops = OPS.get(service, DEFAULT_OPS)
    liveness = block(text, "livenessProbe")
    if ops.liveness:
        assert re.search(r"^\s+path: (\S+)$", liveness, re.M).group(1) == ops.liveness
    else:
        assert re.search(r"^\s+tcpSocket:\n\s+port: http$", liveness, re.M)
    assert re.search(r"^\s+path: (\S+)$", block(text, "readinessProbe"), re.M).group(1) == ops.readiness
    if ops.port:
        assert f"containerPort: {ops.port}" in text
        dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
        assert re.search(rf"^EXPOSE {ops.port}$", dockerfile, re.M)
    assert "runAsNonRoot: true" in text
    assert "readOnlyRootFilesystem: true" in text
    assert "allowPrivilegeEscalation: false" in text
    resources = block(text, "resources")
    assert "requests:" in resources and "limits:" in resources


def test_connector_base_is_scraped_and_replicated() -> None:
    text = manifest_of("exchange-connector").read_text()
    assert re.search(r"^  replicas: 2$", text, re.M)
    assert 'prometheus.io/scrape: "true"' in text
    assert 'prometheus.io/port: "8080"' in text
    assert "prometheus.io/path: /metrics" in text
    env = block(text, "env")
    assert re.search(r"name: BORSA_CONNECTOR_HTTP_HOST\n\s+value: \"0\.0\.0\.0\"", env)
    assert re.search(r"name: BORSA_CONNECTOR_HTTP_PORT\n\s+value: \"8080\"", env)
    dockerfile = (ROOT / "services" / "exchange-connector" / "Dockerfile").read_text()
    assert "BORSA_CONNECTOR_HTTP_PORT=8080" in dockerfile


def test_gateway_migrates_before_it_serves() -> None:
    text = manifest_of("gateway").read_text()
    assert re.search(r"^  replicas: 2$", text, re.M)
    assert re.search(r"- name: http\n\s+port: 80\n\s+targetPort: http$", block(text, "ports"), re.M)
    # The initContainer runs the db package's command from the gateway's own image, against the same database.
    init = block(text, "initContainers")
    assert re.search(r"^\s+image: gateway$", init, re.M)
    assert 'command: ["borsa-migrate", "upgrade"]' in init
    assert env_ref(init, "DATABASE_URL") == ("secretKeyRef", "borsa-postgres", "DATABASE_URL")
    assert "readOnlyRootFilesystem: true" in init and "allowPrivilegeEscalation: false" in init
    db = tomllib.loads((ROOT / "db" / "pyproject.toml").read_text())["project"]
    assert db["name"] in EXTRA_PACKAGES["gateway"] and "borsa-migrate" in db["scripts"]

    containers = block(text, "containers")
    assert env_ref(containers, "DATABASE_URL") == ("secretKeyRef", "borsa-postgres", "DATABASE_URL")
    assert env_ref(containers, "BORSA_TOKEN_SECRET") == ("secretKeyRef", "borsa-gateway", "token-secret")
    assert env_ref(containers, "BORSA_SEALING_PUBLIC_KEY")[0] == "configMapKeyRef"
    # Listens where the probes and the Service look, in the manifest and in the image alike.
    dockerfile = (ROOT / "services" / "gateway" / "Dockerfile").read_text()
    assert re.search(r"name: BORSA_HTTP_HOST\n\s+value: \"0\.0\.0\.0\"", containers)
    assert re.search(r"name: BORSA_HTTP_PORT\n\s+value: \"8000\"", containers)
    assert "BORSA_HTTP_HOST=0.0.0.0" in dockerfile and "BORSA_HTTP_PORT=8000" in dockerfile
    # The exchanges it offers are the ones that have a connector Deployment.
    offered = re.search(r"name: BORSA_EXCHANGES\n\s+value: (\S+)\n", containers)
    assert offered and set(offered.group(1).split(",")) == set(EXCHANGES)


def test_runner_is_replicated_scraped_and_named_by_its_pod() -> None:
    text = manifest_of("bot-runner").read_text()
    # Two replicas split the bots through leases; a rollout adds one before it stops one.
    assert re.search(r"^  replicas: 2$", text, re.M)
    assert re.search(r"maxUnavailable: 0\n\s+maxSurge: 1", text)
    assert 'prometheus.io/scrape: "true"' in text
    assert 'prometheus.io/port: "8080"' in text
    assert "prometheus.io/path: /metrics" in text
    assert "initContainers:" not in text  # the gateway migrates; the runner only reads and writes rows
    containers = block(text, "containers")
    assert 'command: ["borsa-runner"]' in containers
    # Listens where the probes, the Service and Prometheus look, in the manifest and in the image alike.
    assert re.search(r"name: BORSA_RUNNER_HTTP_HOST\n\s+value: \"0\.0\.0\.0\"", containers)
    assert re.search(r"name: BORSA_RUNNER_HTTP_PORT\n\s+value: \"8080\"", containers)
    dockerfile = (ROOT / "services" / "bot-runner" / "Dockerfile").read_text()
    assert "BORSA_RUNNER_HTTP_HOST=0.0.0.0" in dockerfile and "BORSA_RUNNER_HTTP_PORT=8080" in dockerfile
    # Its name in the leases is the pod's: unique among replicas, the same after a container restart.
    assert re.search(r"name: BORSA_REPLICA_ID\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: metadata.name", containers)
    assert env_ref(containers, "DATABASE_URL") == ("secretKeyRef", "borsa-postgres", "DATABASE_URL")
    assert re.search(r"^\s+value: nats://bot-runner:\$\(NATS_PASSWORD\)@nats:4222$", containers, re.M)
    assert "- configMapRef:\n                name: borsa-config" in containers
    # The lease outlives a few renewals (every third of it) and the grace period covers the NATS drain (30 s).
    lease = re.search(r"name: BORSA_RUNNER_LEASE_SECONDS\n\s+value: \"(\d+)\"", containers)
    assert lease and int(lease.group(1)) >= 3
    assert int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1)) > 30


def test_reporting_is_one_scraped_replica_on_its_own_durable() -> None:
    text = manifest_of("reporting").read_text()
    # One replica; more would be safe (each batch locks its groups), and the manifest says so where it is set.
    replicas = re.search(r"^((?:  #.*\n)+)  replicas: (\d+)$", text, re.M)
    assert replicas and replicas.group(2) == "1"
    assert "lock" in replicas.group(1) and "more replicas" in replicas.group(1).lower()
    assert re.search(r"maxUnavailable: 0\n\s+maxSurge: 1", text)
    assert 'prometheus.io/scrape: "true"' in text
    assert 'prometheus.io/port: "8080"' in text
    assert "prometheus.io/path: /metrics" in text
    assert "initContainers:" not in text  # the gateway migrates; reporting only reads and writes rows
    containers = block(text, "containers")
    assert 'command: ["borsa-reporting"]' in containers
    # Listens where the probes, the Service and Prometheus look, in the manifest and in the image alike.
    assert re.search(r"name: BORSA_REPORTING_HTTP_HOST\n\s+value: \"0\.0\.0\.0\"", containers)
    assert re.search(r"name: BORSA_REPORTING_HTTP_PORT\n\s+value: \"8080\"", containers)
    dockerfile = (ROOT / "services" / "reporting" / "Dockerfile").read_text()
    assert "BORSA_REPORTING_HTTP_HOST=0.0.0.0" in dockerfile and "BORSA_REPORTING_HTTP_PORT=8080" in dockerfile
    assert env_ref(containers, "DATABASE_URL") == ("secretKeyRef", "borsa-postgres", "DATABASE_URL")
    assert re.search(r"^\s+value: nats://reporting:\$\(NATS_PASSWORD\)@nats:4222$", containers, re.M)
    assert "- configMapRef:\n                name: borsa-config" in containers
    # Its durable consumer is the one its NATS user may use (and the service's default).
    durable = re.search(r"name: BORSA_REPORTING_DURABLE\n\s+value: (\S+)\n", containers).group(1)
    assert durable == "borsa-reporting"
    assert f'"$JS.API.CONSUMER.MSG.NEXT.{ORDERS_STREAM}.{durable}"' in nats_users_config()
    assert ReportingSettings.from_env(environ={}).durable == durable
    # The grace period covers the NATS drain (30 s).
    assert int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1)) > 30


def test_only_connectors_reference_the_private_sealing_key() -> None:
    """Every pod that names a Secret gets it onto its node: the private key stays on connector nodes."""
    for path in K8S.rglob("*.yaml"):
        if path.name in NOT_APPLIED:
            continue
        names = {name for name, _ in key_refs(path.read_text(), "secretKeyRef")}
        if "borsa-sealing-key" in names:
            assert path == K8S / "exchange-connector" / "exchange-connector.yaml", path


def test_each_service_logs_into_nats_as_its_own_user() -> None:
    nats = (K8S / "nats.yaml").read_text()
    users = dict(re.findall(r"user: (\S+)\n\s+password: \$(\w+)", nats))
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        for user in re.findall(r"value: nats://([\w-]+):\$\(NATS_PASSWORD\)@nats:4222$", text, re.M):
            assert user in users, f"{path}: NATS user {user} is not in nats.yaml"
            # The service reads the same Secret key the servers check its password against.
            assert env_ref(text, "NATS_PASSWORD") == env_ref(nats, users[user]), (path, user)
    assert {"exchange-connector", "gateway", "bot-runner", "reporting"} <= set(users)


def nats_users_config() -> str:
    """The `authorization { ... }` block of nats.yaml's server configuration, as nats-server reads it."""
    conf = textwrap.dedent(block((K8S / "nats.yaml").read_text(), "nats.conf"))
    start = conf.index("authorization {")
    end = conf.index("\n}", start) + 2
    return conf[start:end]


@pytest.mark.integration
def test_nats_users_may_do_what_their_services_do(tmp_path: Path, database_factory, runner_factory) -> None:
    """nats.yaml's users and permissions on a real nats-server: the real bot runner and the real reporting start
    under their users (stream, durable consumers, notices, the reports service), pull and acknowledge order events,
    reporting answers the gateway's report requests and discovery, and each service's subjects pass while others
    are refused."""
    # nats-server parses a variable's value as a config value: a leading letter keeps a hex password a string
    # (secrets.example.yaml says the same).
    passwords = {var: f"p{token_hex(16)}" for var in re.findall(r"password: \$(\w+)", nats_users_config())}
    users = dict(re.findall(r"user: (\S+)\n\s+password: \$(\w+)", nats_users_config()))
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: {json.dumps(str(tmp_path / 'js'))}\n}}\n"
        + nats_users_config()
    )
    log = tmp_path / "nats.log"
    binary = find_binary("nats-server", ("/usr/sbin", "/usr/local/bin"))
    server = subprocess.Popen([binary, "-c", str(conf), "-l", str(log)], env=passwords)
    try:
        wait_for_port("127.0.0.1", port, 20, server, "nats-server", log)

        def url(user: str) -> str:
            return f"nats://{user}:{passwords[users[user]]}@127.0.0.1:{port}"

        # Ready only once it has the stream, its durable consumer and the notices' subscription; reporting once it
        # has its durable consumer and its `nats.micro` service.
        database = database_factory()
        runner = runner_factory(url("bot-runner"), database, env={"BORSA_RUNNER_SCAN_MS": "200"})
        reporting = start_reporting(
            url("reporting"), database, workdir=tmp_path, env={"BORSA_REPORTING_BATCH_WAIT_MS": "50"}
        )
        try:
            asyncio.run(exercise_nats_permissions(url, database))
        finally:
            reporting.stop()
        runner.stop()
        assert "permissions violation" not in runner.log_path.read_text().lower()
        assert "permissions violation" not in reporting.log_path.read_text().lower()
    finally:
        server.terminate()
        server.wait(10)


def order_event(account: str) -> OrderEvent:
    """A filled market buy on `account` (a stored key), its fee in the quote currency."""
    now = 1_790_000_000_000
    order = Order(
        exchange="binance",
        account=account,
        id="deploy-1",
        client_order_id="c-deploy-1",
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        side=Side.BUY,
        type="market",
        status=OrderStatus.CLOSED,
        amount=Decimal("0.01"),
        filled=Decimal("0.01"),
        remaining=Decimal(0),
        price=None,
        average=Decimal("100"),
        cost=Decimal("1"),
        fee=None,
        created_at=now,
        updated_at=now,
    )
    fill = Fill(
        trade_id="t-1",
        price=Decimal("100"),
        amount=Decimal("0.01"),
        fee_cost=Decimal("0.001"),
        fee_currency="USDT",
        timestamp=now,
    )
    return OrderEvent(event_id=uuid.uuid4().hex, kind="filled", order=order, fills=[fill], timestamp=now)


async def exercise_nats_permissions(url, database: str) -> None:
    db = await asyncpg.connect(database)
    try:
        account = await store_key(db, "binance", None, "paper")
        user = str(await db.fetchval("SELECT user_id FROM api_keys WHERE id = $1", uuid.UUID(account)))
    finally:
        await db.close()
    refused: dict[str, list[str]] = {}

    async def client(user: str):
        async def error(exc: Exception) -> None:
            refused.setdefault(user, []).append(str(exc))

        return await nats_connect(url(user), error_cb=error, max_reconnect_attempts=0)

    connector, runner, gateway, other_gateway, admin, reporting = [
        await client(u) for u in ("exchange-connector", "bot-runner", "gateway", "gateway", "admin", "reporting")
    ]
    try:
        # The runner and reporting pull and acknowledge (reporting sets the undecodable one aside: a `term`, on the
        # same acknowledgement subject) what a connector publishes on the order stream.
        await connector.jetstream().publish("borsa.events.order.binance.key-1", b"{}")
        event = order_event(account)
        await connector.jetstream().publish(
            order_events("binance", account), encode(event), headers={"Nats-Msg-Id": event.event_id}
        )
        for durable in ("borsa-runner", "borsa-reporting"):
            consumer = None
            for _ in range(100):
                consumer = await admin.jetstream().consumer_info(ORDERS_STREAM, durable)
                if consumer.delivered.stream_seq >= 2 and consumer.num_ack_pending == 0 and consumer.num_pending == 0:
                    break
                await asyncio.sleep(0.1)
            assert consumer.delivered.stream_seq >= 2 and consumer.num_ack_pending == 0, consumer

        # Requests from the runner reach a connector; tickers, market changes and the gateway's notices reach the
        # runner; the runner's bot events reach a dashboard; the gateway's replicas hear each other's cache notices.
        async def pong(msg) -> None:
            await msg.respond(b"pong")

        await connector.subscribe("borsa.exchange.binance.>", queue="exchange-connector-binance", cb=pong)
        heard = {name: asyncio.get_running_loop().create_future() for name in ("ticker", "market", "notice")}
        heard |= {name: asyncio.get_running_loop().create_future() for name in ("bot", "cache")}

        def hear(name: str):
            async def on(msg) -> None:
                if not heard[name].done():
                    heard[name].set_result(msg.data)

            return on

        await runner.subscribe("borsa.market.binance.ticker.BTC_USDT", cb=hear("ticker"))
        await runner.subscribe("borsa.events.market.binance", cb=hear("market"))
        await runner.subscribe(BOTS_CHANGED, cb=hear("notice"))
        await admin.subscribe("borsa.events.bot.>", cb=hear("bot"))
        await other_gateway.subscribe("borsa.gateway.bots.changed", cb=hear("cache"))
        for nc in (connector, runner, admin, other_gateway):
            await nc.flush()
        assert (await runner.request("borsa.exchange.binance.order.create", b"{}", timeout=5)).data == b"pong"
        assert (await gateway.request("borsa.exchange.binance.describe", b"{}", timeout=5)).data == b"pong"
        # Reporting asks connectors for tickers (fee rates, prices); the gateway asks reporting for reports (the
        # real service, which prices the open position through a ticker request of its own) and discovers it.
        assert (await reporting.request("borsa.exchange.binance.ticker", b"{}", timeout=5)).data == b"pong"
        req = ReportRequest(user_id=user, group_by="exchange")
        summary = await request(gateway, reports("summary"), req, SummaryReply, timeout=10)
        assert [(row.exchange, row.fills, row.volume) for row in summary.rows] == [("binance", 1, Decimal("1"))]
        ping = await gateway.request("$SRV.PING.reporting", b"", timeout=5)
        assert json.loads(ping.data)["name"] == "reporting"
        await connector.publish("borsa.market.binance.ticker.BTC_USDT", b"t")
        await connector.publish("borsa.events.market.binance", b"m")
        await gateway.publish(BOTS_CHANGED, b"n")
        await runner.publish("borsa.events.bot.binance.bot-1", b"b")
        await gateway.publish("borsa.gateway.bots.changed", b"c")
        for nc in (connector, runner, gateway):
            await nc.flush()
        got = await asyncio.wait_for(asyncio.gather(*heard.values()), 5)
        assert dict(zip(heard, got, strict=True)) == {
            "ticker": b"t",
            "market": b"m",
            "notice": b"n",
            "bot": b"b",
            "cache": b"c",
        }
        assert refused == {}, refused

        # And what a runner has no business doing is refused: serving connector subjects, deleting the stream.
        await runner.subscribe("borsa.exchange.binance.order.create")
        await runner.publish(f"$JS.API.STREAM.DELETE.{ORDERS_STREAM}", b"")
        await runner.flush()
        for _ in range(50):
            if len(refused.get("bot-runner", [])) >= 2:
                break
            await asyncio.sleep(0.1)
        assert len(refused.get("bot-runner", [])) == 2, refused
        assert all("permissions violation" in error for error in refused["bot-runner"]), refused

        # Reporting may neither place orders, nor hear report requests outside its queue group (a plain subscriber
        # or another group beside the replicas), nor delete the stream.
        await reporting.publish("borsa.exchange.binance.order.create", b"{}")
        await reporting.subscribe("borsa.reports.summary")
        await reporting.subscribe("borsa.reports.summary", queue="eavesdropper")
        await reporting.publish(f"$JS.API.STREAM.DELETE.{ORDERS_STREAM}", b"")
        await reporting.flush()
        for _ in range(50):
            if len(refused.get("reporting", [])) >= 4:
                break
            await asyncio.sleep(0.1)
        assert len(refused.get("reporting", [])) == 4, refused
        assert all("permissions violation" in error for error in refused["reporting"]), refused
        assert (await admin.jetstream().stream_info(ORDERS_STREAM)).config.name == ORDERS_STREAM
    finally:
        for nc in (connector, runner, gateway, other_gateway, admin, reporting):
            await nc.close()


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_one_connector_deployment_per_exchange(exchange: str) -> None:
    text = (K8S / "exchanges" / exchange / "kustomization.yaml").read_text()
    assert yaml_list(text, "resources") == ["../../exchange-connector"]
    assert re.search(rf"^nameSuffix: -{exchange}$", text, re.M)
    labels = block(text, "labels")
    assert re.search(rf"^\s+exchange: {exchange}$", labels, re.M)
    assert "includeSelectors: true" in labels  # each Deployment and Service selects its own exchange only
    assert f'value: ["--exchange", "{exchange}"]' in text
    assert f"exchanges/{exchange}" in yaml_list((K8S / "kustomization.yaml").read_text(), "resources")


def test_kustomizations_list_every_manifest_that_exists() -> None:
    root = (K8S / "kustomization.yaml").read_text()
    assert re.search(r"^namespace: borsa$", root, re.M)
    assert "app.kubernetes.io/part-of: borsa" in block(root, "labels")
    listed: set[Path] = set()
    for kustomization in kustomizations():
        for entry in yaml_list(kustomization.read_text(), "resources"):
            target = (kustomization.parent / entry).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{kustomization}: {entry}"
            listed.add(target / "kustomization.yaml" if target.is_dir() else target)
    manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name not in NOT_APPLIED}
    assert manifests - listed == set(), "manifests no kustomization lists"
    nested = {p.resolve() for p in kustomizations()} - {(K8S / "kustomization.yaml").resolve()}
    assert nested - listed == set(), "kustomizations nothing includes"
    assert (K8S / "secrets.example.yaml").resolve() not in listed


def test_nats_is_a_three_server_jetstream_cluster() -> None:
    text = (K8S / "nats.yaml").read_text()
    kinds = [kind_and_name(doc) for doc in documents(K8S / "nats.yaml")]
    assert ("StatefulSet", "nats") in kinds and ("Service", "nats") in kinds
    assert re.search(r"^  replicas: 3$", text, re.M)
    assert "volumeClaimTemplates:" in text
    assert re.search(r"^\s+sync_interval: always$", text, re.M)
    assert all(f"nats://nats-{i}.nats-headless:6222" in text for i in range(3))
    assert re.search(r"- name: client\n\s+port: 4222", text)
    # Every password the config names comes from the Secret through the environment.
    for variable in re.findall(r"password: \$(\w+)", text):
        assert re.search(rf"- name: {variable}\n\s+valueFrom:\n\s+secretKeyRef:", text), variable


def test_secrets_example_covers_every_secret_reference_with_placeholders() -> None:
    example = K8S / "secrets.example.yaml"
    provided: dict[tuple[str, str], set[str]] = {}
    for doc in documents(example):
        kind, name = kind_and_name(doc)
        # Secrets, and ConfigMaps that are made with one (the sealing public key).
        assert kind in {"Secret", "ConfigMap"}
        data = dict(re.findall(r"^ {2}(\S+): (.*)$", block(doc, "stringData" if kind == "Secret" else "data"), re.M))
        for key, value in data.items():
            assert "REPLACE_WITH" in value or key in {"POSTGRES_USER", "POSTGRES_DB"}, (name, key)
        provided[kind, name] = set(data)
    secrets = {name for kind, name in provided if kind == "Secret"}
    assert {"borsa-nats", "borsa-sealing-key", "borsa-postgres", "borsa-gateway"} <= secrets
    refs = []
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        refs += [("Secret", name, key) for name, key in key_refs(text, "secretKeyRef")]
        refs += [("ConfigMap", name, key) for name, key in key_refs(text, "configMapKeyRef")]
    assert ("Secret", "borsa-sealing-key", "BORSA_SEALING_KEY") in refs
    assert ("Secret", "borsa-gateway", "token-secret") in refs
    assert ("ConfigMap", "borsa-sealing-public-key", "BORSA_SEALING_PUBLIC_KEY") in refs
    for kind, name, key in refs:
        assert key in provided.get((kind, name), set()), f"{kind} {name}/{key} is not in secrets.example.yaml"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_platform() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for exchange in EXCHANGES:
        assert f"name: exchange-connector-{exchange}\n" in out
        assert f"- --exchange\n        - {exchange}\n" in out
    # Connectors, the simulator, the gateway, the bot runner and reporting.
    assert out.count("kind: Deployment\n") == len(EXCHANGES) + 4
    assert "image: bot-runner:0.1.0\n" in out
    assert "image: exchange-connector:" in out
    assert out.count("image: gateway:0.1.0\n") == 2  # the gateway and its migrating initContainer
    assert "BORSA_SIM_URL: http://exchange-sim:8900" in out
    assert "image: reporting:0.1.0\n" in out
