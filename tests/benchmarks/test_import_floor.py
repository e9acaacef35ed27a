"""bench/import_floor.py: each step's RSS is read in a fresh interpreter after that import, and a
module that allocates shows up in the step that imported it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bench import import_floor

# A module of this test's own that holds 8 MiB of heap while imported: its step must show it.
BALLAST = "edgeproxy_bench_ballast"


@pytest.fixture
def ballast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / f"{BALLAST}.py").write_text("BALLAST = bytearray(8 << 20)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))


def test_each_import_is_measured_in_a_fresh_interpreter(ballast: None) -> None:
    steps = import_floor.measure(["json", BALLAST], runs=1)
    assert [name for name, _ in steps] == ["(interpreter)", "json", BALLAST]
    (_, bare), (_, after_json), (_, after_ballast) = steps
    assert bare > 0
    assert after_ballast - after_json >= 8 * 1024  # KiB: the 8 MiB it holds, at least
    assert BALLAST not in sys.modules  # measured elsewhere, never imported here


def test_the_table_shows_what_each_step_added() -> None:
    text = import_floor.table([("(interpreter)", 8192.0), ("uvloop", 20480.0)])
    assert text.splitlines()[2:] == ["| (interpreter) | 8.0 | — |", "| uvloop | 20.0 | 12.0 |"]
