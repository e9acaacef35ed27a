"""Numbered schema migrations, a folder per dialect (NNN_name.sql), applied in order at start."""

from __future__ import annotations

from importlib import resources
from itertools import pairwise


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration of the dialect, in order."""
    folder = resources.files(__package__) / dialect
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    for (number, first, _), (next_number, second, _) in pairwise(found):
        if number == next_number:
            # Only one of them would ever be applied: fail loudly, never skip a schema change.
            raise ValueError(f"migrations {first} and {second} share the number {number}")
    return found
