"""The README's example imports and defines what it shows (running it needs a NATS server)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

README = Path(__file__).parents[1] / "README.md"


def test_readme_example_defines_a_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    path = tmp_path / "readme_example.py"
    path.write_text(block)
    spec = importlib.util.spec_from_file_location("readme_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # msgspec resolves a Struct's annotations through its module, so the module must be registered.
    monkeypatch.setitem(sys.modules, "readme_example", module)
    spec.loader.exec_module(module)
    settings = module.ConnectorSettings.from_env("BORSA_CONNECTOR_", {"BORSA_CONNECTOR_EXCHANGE": "kucoin"})
    assert settings.exchange == "kucoin"
    assert settings.nats_url == "nats://127.0.0.1:4222"
