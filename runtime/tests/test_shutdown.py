"""run_service turns a signal or the end of main into one orderly, logged stop with an exit code."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from structlog.testing import capture_logs

from borsa_runtime import GracefulShutdown, run_service

pytestmark = pytest.mark.unit


def test_signal_runs_steps_last_in_first_out_then_main_finishes() -> None:
    order: list[str] = []

    async def main(shutdown: GracefulShutdown) -> None:
        async def step(name: str) -> None:
            order.append(name)

        shutdown.on_shutdown(lambda: step("close database"))
        shutdown.on_shutdown(lambda: step("drain nats"))
        os.kill(os.getpid(), signal.SIGTERM)
        await shutdown.wait()
        order.append("main done")
        assert shutdown.reason == "SIGTERM"

    with capture_logs() as logs:
        assert run_service(main) == 0
    assert order == ["drain nats", "close database", "main done"]
    assert {"event": "shutting down", "reason": "SIGTERM", "log_level": "info"} in logs


def test_main_returning_on_its_own_still_runs_the_steps() -> None:
    done: list[str] = []

    async def main(shutdown: GracefulShutdown) -> None:
        async def step() -> None:
            done.append("drained")

        shutdown.on_shutdown(step)

    assert run_service(main) == 0
    assert done == ["drained"]


def test_main_failing_exits_1_after_the_steps() -> None:
    done: list[str] = []

    async def main(shutdown: GracefulShutdown) -> None:
        async def step() -> None:
            done.append("drained")

        shutdown.on_shutdown(step)
        raise RuntimeError("cannot start")

    with capture_logs() as logs:
        assert run_service(main) == 1
    assert done == ["drained"]
    assert any(log["event"] == "service failed" for log in logs)


def test_a_failing_step_does_not_stop_the_others() -> None:
    done: list[str] = []

    async def main(shutdown: GracefulShutdown) -> None:
        async def good() -> None:
            done.append("good")

        async def bad() -> None:
            raise ConnectionError("gone")

        shutdown.on_shutdown(good)
        shutdown.on_shutdown(bad)
        shutdown.request("test")
        await shutdown.wait()

    with capture_logs() as logs:
        assert run_service(main) == 0
    assert done == ["good"]
    assert any(log["event"] == "shutdown step failed" for log in logs)


def test_main_that_ignores_shutdown_is_stopped_after_the_timeout() -> None:
    async def main(shutdown: GracefulShutdown) -> None:
        shutdown.request("test")
        await asyncio.sleep(60)

    with capture_logs() as logs:
        assert run_service(main, timeout=0.1) == 1
    assert any(log["event"] == "service did not stop in time" for log in logs)
