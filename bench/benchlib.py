"""What every benchmark here shares: percentiles, a timed request loop, and keeping a table in README.md."""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def timed_loop(call, seconds: float) -> tuple[list[float], int]:
    """Call `call()` back to back for `seconds`: (latencies of the successes, number of failures)."""
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            await call()
            latencies.append(time.perf_counter() - start)
        except Exception:
            errors += 1
    return latencies, errors


def write_readme(marker: str, text: str) -> None:
    """Replace what stands between `<!-- marker -->` and `<!-- /marker -->` in README.md."""
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in content or end not in content:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    before, _, rest = content.partition(start)
    _, _, after = rest.partition(end)
    readme.write_text(f"{before}{start}\n{text}\n{end}{after}")
