"""External tools the tests drive (installed by `make system-deps`)."""

from __future__ import annotations

import os
import shutil

import pytest


def promtool() -> str:
    """The promtool executable; skips the test without it, fails it under CI."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found (Debian package: prometheus; `make system-deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
