"""Injected faults (`POST /_sim/faults`): errors, added latency and timeouts per exchange and endpoint.

A fault in phase "after" lets the request take effect (the order IS placed) and then spoils the answer:
the ambiguous outcome that turns naive retries into duplicate orders.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass

PHASES = ("before", "after")


class FaultSpecError(ValueError):
    pass


@dataclass(slots=True)
class Fault:
    exchange: str | None = None  # None: every exchange
    endpoint: str | None = None  # a path under the exchange, "*" wildcards allowed ("/api/v3/order*")
    method: str | None = None
    error_rate: float = 1.0  # probability that a matching request is hit
    status: int | None = None  # answer with this HTTP status and the exchange's error body for it
    latency_ms: int = 0  # delay before answering: before the request takes effect, or after it in phase "after"
    timeout: bool = False  # never answer (until the client gives up)
    phase: str = "before"
    count: int | None = None  # how many more requests to hit; None: until cleared
    hits: int = 0

    def matches(self, exchange: str, method: str, path: str) -> bool:
        if self.exchange and self.exchange != exchange:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.endpoint and not fnmatch.fnmatchcase(path, self.endpoint):
            return False
        return self.count is None or self.count > 0

    def as_dict(self) -> dict:
        return asdict(self)


def parse_fault(data: dict, exchanges: tuple[str, ...]) -> Fault:
    known = set(Fault.__dataclass_fields__) - {"hits"}
    unknown = set(data) - known
    if unknown:
        raise FaultSpecError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(known)}")
    fault = Fault(**data)
    if fault.exchange is not None and fault.exchange not in exchanges:
        raise FaultSpecError(f"exchange must be one of {list(exchanges)}, not {fault.exchange!r}")
    if not 0 <= float(fault.error_rate) <= 1:
        raise FaultSpecError("error_rate must be between 0 and 1")
    if fault.phase not in PHASES:
        raise FaultSpecError(f"phase must be one of {list(PHASES)}")
    if fault.status is not None and not 400 <= int(fault.status) <= 599:
        raise FaultSpecError("status must be an HTTP error status between 400 and 599")
    if fault.latency_ms < 0:
        raise FaultSpecError("latency_ms must be >= 0")
    if fault.count is not None and fault.count < 1:
        raise FaultSpecError("count must be >= 1")
    if fault.status is None and not fault.timeout and not fault.latency_ms:
        raise FaultSpecError("a fault needs at least one of status, timeout or latency_ms")
    return fault


class Faults:
    def __init__(self, seed: int) -> None:
        self._rules: list[Fault] = []
        self._rng = random.Random(f"{seed}/faults")

    def add(self, fault: Fault) -> None:
        self._rules.append(fault)

    def clear(self, exchange: str | None = None) -> None:
        self._rules = [f for f in self._rules if exchange is not None and f.exchange != exchange]

    def list(self) -> list[dict]:
        return [f.as_dict() for f in self._rules]

    def pick(self, exchange: str, method: str, path: str) -> Fault | None:
        for fault in self._rules:
            if fault.matches(exchange, method, path) and self._rng.random() < fault.error_rate:
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None
