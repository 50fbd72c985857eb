"""Images and Kubernetes manifests stay consistent with the services they run (STYLE.md: each service folder is its
image name, its `app:` label and its Deployment name). No YAML parser is installed, so structure is read from text."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
# What each service's container answers on: (port, liveness path, readiness path).
OPS = {"exchange-connector": (8080, "/healthz", "/readyz"), "exchange-sim": (8900, "/_sim/health", "/_sim/health")}
NOT_APPLIED = {"kustomization.yaml", "secrets.example.yaml"}

pytestmark = pytest.mark.unit


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
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\}", text, re.M)) == 2  # build stage and runtime stage
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}

    port, liveness, _ = OPS.get(service, (None, None, None))
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)$", text, re.M | re.S)
    assert healthcheck and "urllib.request" in healthcheck.group(0)
    if port:
        assert re.search(rf"^EXPOSE {port}$", text, re.M)
        assert liveness in healthcheck.group(0)


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
    assert re.findall(r"^\s+image: (\S+)$", text, re.M) == [service]  # the image name is the folder name
    assert f"serviceAccountName: {service}" in text


@pytest.mark.parametrize("service", SERVICES)
def test_probes_point_at_the_ops_endpoints(service: str) -> None:
    text = manifest_of(service).read_text()
    port, liveness, readiness = OPS.get(service, (None, "/healthz", "/readyz"))
    assert re.search(r"^\s+path: (\S+)$", block(text, "livenessProbe"), re.M).group(1) == liveness
    assert re.search(r"^\s+path: (\S+)$", block(text, "readinessProbe"), re.M).group(1) == readiness
    if port:
        assert f"containerPort: {port}" in text
        dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
        assert re.search(rf"^EXPOSE {port}$", dockerfile, re.M)
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
    provided: dict[str, set[str]] = {}
    for doc in documents(example):
        kind, name = kind_and_name(doc)
        assert kind == "Secret"
        data = dict(re.findall(r"^ {2}(\S+): (.*)$", block(doc, "stringData"), re.M))
        for key, value in data.items():
            assert "REPLACE_WITH" in value or key in {"POSTGRES_USER", "POSTGRES_DB"}, (name, key)
        provided[name] = set(data)
    assert {"borsa-nats", "borsa-sealing-key", "borsa-postgres"} <= set(provided)
    refs = []
    for path in K8S.rglob("*.yaml"):
        for ref in re.finditer(r"secretKeyRef:\n((?:\s+\w+: \S+\n){2})", path.read_text()):
            fields = dict(re.findall(r"(\w+): (\S+)", ref.group(1)))
            refs.append((fields["name"], fields["key"]))
    assert ("borsa-sealing-key", "BORSA_SEALING_KEY") in refs
    for name, key in refs:
        assert key in provided.get(name, set()), f"secretKeyRef {name}/{key} is not in secrets.example.yaml"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_platform() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for exchange in EXCHANGES:
        assert f"name: exchange-connector-{exchange}\n" in out
        assert f"- --exchange\n        - {exchange}\n" in out
    assert out.count("kind: Deployment\n") == len(EXCHANGES) + 1  # connectors and the simulator
    assert "image: exchange-connector:" in out
    assert "BORSA_SIM_URL: http://exchange-sim:8900" in out
