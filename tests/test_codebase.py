"""The codebase keeps the house rules the README's Development section lists: ruff's lint
and format, and ``mypy --strict`` over the packages (setup.cfg) — checked by the suite, so
``.ci/run`` refuses a change that breaks them, like any failing test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_codebase_is_clean(command: tuple[str, ...]) -> None:
    """ruff finds nothing to say and mypy --strict no error."""
    done = run(*command)
    assert done.returncode == 0, done.stdout + done.stderr
