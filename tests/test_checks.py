"""The linter and the type checker, run by the one test command (README.md, .ci/run).

Both are configured in pyproject.toml and installed by the ``test`` extra; they run from
this interpreter's environment, so the versions are the ones the install chose.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_finds_nothing():
    result = run_tool("ruff", "check", "--no-cache", "src", "tests", "benchmarks")
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing(tmp_path):
    # the files to check (src/ordersync, src/ordersync_adapters) come from [tool.mypy];
    # the cache goes to a temporary folder so the work tree stays clean
    result = run_tool("mypy", "--cache-dir", str(tmp_path / "mypy-cache"))
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
