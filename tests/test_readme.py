"""The README's commands and snippets are executed, so what it promises stays true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_gives_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"`make ([a-z-]+)", README):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


@pytest.mark.integration
def test_simulator_snippet_runs(sim_url: str, tmp_path: Path) -> None:
    (snippet,) = [b for b in python_blocks() if "point_to_sim" in b]
    script = tmp_path / "snippet.py"
    script.write_text(snippet.replace("http://127.0.0.1:<port>", sim_url))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["XXBTZUSD", "closed"]
