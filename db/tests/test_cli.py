"""`borsa-migrate` and `python -m borsa_db`, run as the commands they are."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from borsa_testing.processes import free_port

Exists = Callable[[str], Awaitable[bool]]
BORSA_MIGRATE = str(Path(sys.executable).with_name("borsa-migrate"))
PYTHON_M = [sys.executable, "-m", "borsa_db"]


def env(database_url: str | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return environ if database_url is None else environ | {"DATABASE_URL": database_url}


def run(command: list[str], database_url: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env(database_url), capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [[BORSA_MIGRATE], [*PYTHON_M, "upgrade"], [BORSA_MIGRATE, "current"]])
def test_without_database_url_it_fails_naming_the_variable(command: list[str]) -> None:
    result = run(command, None)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_a_server_that_does_not_answer_fails_naming_the_variable() -> None:
    result = run([BORSA_MIGRATE], f"postgresql://borsa:hunter2@127.0.0.1:{free_port()}/borsa")
    assert result.returncode == 1
    assert "cannot connect to the database at DATABASE_URL=postgresql://borsa:" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.integration
def test_upgrade_creates_the_database_and_is_repeatable(database_exists: Exists, missing_database: str) -> None:
    first = run([BORSA_MIGRATE], missing_database)
    assert first.returncode == 0, first.stderr
    assert "migrated from base (no Borsa tables) to 0005 (head)" in first.stdout
    assert asyncio.run(database_exists(missing_database))

    again = run([*PYTHON_M, "upgrade"], missing_database)
    assert again.returncode == 0, again.stderr
    assert "already at 0005 (head)" in again.stdout

    current = run([BORSA_MIGRATE, "current"], missing_database)
    assert current.returncode == 0, current.stderr
    assert "at 0005 (head)" in current.stdout


@pytest.mark.integration
def test_two_processes_at_once_both_succeed(missing_database: str) -> None:
    processes = [
        subprocess.Popen(
            [BORSA_MIGRATE, "upgrade"], env=env(missing_database), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [(process.wait(timeout=120), *process.communicate()) for process in processes]
    assert [code for code, _, _ in results] == [0, 0], results
    assert run([BORSA_MIGRATE, "current"], missing_database).stdout.endswith("at 0005 (head)\n")


@pytest.mark.integration
def test_downgrade_to_base(migrated_database: str) -> None:
    result = run([BORSA_MIGRATE, "downgrade", "base"], migrated_database)
    assert result.returncode == 0, result.stderr
    assert "migrated from 0005 (head) to base (no Borsa tables)" in result.stdout
    assert "at base" in run([BORSA_MIGRATE, "current"], migrated_database).stdout


@pytest.mark.integration
def test_unknown_revision_fails_cleanly(migrated_database: str) -> None:
    result = run([BORSA_MIGRATE, "downgrade", "nonexistent"], migrated_database)
    assert result.returncode == 1
    assert result.stderr.startswith("borsa-migrate: ") and "nonexistent" in result.stderr
    assert "Traceback" not in result.stderr
