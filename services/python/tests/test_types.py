"""The package (py.typed) and the shop's services are typed: mypy --strict finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="mypy (Debian's mypy package) checks the types")
    run = subprocess.run([sys.executable, "-m", "mypy", "streamgate_service", "shop"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
