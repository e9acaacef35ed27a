"""Where log lines go besides stderr, and their human shape.

`LogFile`: a log file opened for appending and opened again on request (SIGUSR1, after logrotate
moved it). Each batch is one `write(2)` on an O_APPEND descriptor, so edge workers appending to
the same file never interleave within a batch's lines.

`text_line`: the human format (`log.format = "text"`): time, level, logger and message, then each
field as key=value (quoted when it holds spaces, quotes or `=`; null as `-`).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+,[]*")
_HEAD = ("time", "level", "logger", "message")


class LogFile:
    """A text stream over an append-only file that `reopen()` opens again by its path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        return len(text)

    def flush(self) -> None:
        """Every write went to the kernel already."""

    def reopen(self) -> None:
        """Open the path again (a new file when logrotate moved the old one away); on failure
        keep writing where we were."""
        fresh = self._open()
        with self._lock:
            old, self._fd = self._fd, fresh
        os.close(old)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        value = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    if value and all(c in _PLAIN for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def text_of(entry: dict[str, Any]) -> str:
    """One entry (the JSON line's object) in the text shape."""
    head = " ".join(str(entry.get(k, "")) for k in _HEAD[:3])
    message = entry.get("message", "")
    fields = " ".join(f"{k}={_value(v)}" for k, v in entry.items() if k not in _HEAD)
    return f"{head} {message}" + (f" {fields}" if fields else "")


def text_line(json_line: str) -> str:
    """A line built in the JSON shape (the access log's), in the text shape."""
    return text_of(json.loads(json_line))
