"""Process logging: one JSON object per line on stderr, for machines to read."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else passed via `extra=` becomes a JSON field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# One encoder for every line: json.dumps(default=...) would build a new one per call.
_ENCODE = json.JSONEncoder(default=str).encode
encode_json = _ENCODE  # the same encoding, for lines built in parts (dataplane.observe)
AccessSink = Callable[[str], None]


def json_line(logger: str, message: str, fields: dict[str, Any], created: float) -> str:
    """One log line in the shape JsonFormatter writes, built directly (the access log's path)."""
    return _ENCODE(
        {
            "time": datetime.fromtimestamp(created, UTC).isoformat(),
            "level": "info",
            "logger": logger,
            "message": message,
            **fields,
        }
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        preformatted = getattr(record, "json_line", None)
        if preformatted is not None:
            return str(preformatted)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _ENCODE(entry)


class BatchedHandler(logging.Handler):
    """Formats on the caller's thread; a flusher thread writes the lines in batches.

    One access-log line per request made one unbuffered write per request on the event loop,
    a third of a keep-alive request's CPU. Here the loop only formats and appends; the write
    happens off the loop, every `interval` seconds or when `batch_bytes` pile up, and at once
    for warnings and errors. If the stream stalls, lines beyond `max_bytes` are dropped and
    counted rather than blocking the proxy or growing without bound.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = 0.1,
        batch_bytes: int = 64 * 1024,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._batch_bytes = batch_bytes
        self._max_bytes = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._dropped = 0
        self._wake = threading.Event()
        # Lock order: _write_lock, then _buffer_lock. Never the handler's own lock here:
        # logging.shutdown() holds it while it calls flush() and close().
        self._write_lock = threading.Lock()
        self._buffer_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-flusher", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, urgent=record.levelno >= logging.WARNING)

    def write_line(self, line: str, *, urgent: bool = False) -> None:
        """Queue one formatted line; the access log's per-request path calls this directly."""
        with self._buffer_lock:
            if self._size + len(line) > self._max_bytes:
                self._dropped += 1
                return
            self._lines.append(line)
            self._size += len(line) + 1
            urgent = urgent or self._size >= self._batch_bytes
        if urgent:
            self._wake.set()

    def flush(self) -> None:
        with self._write_lock:
            with self._buffer_lock:
                lines, dropped = self._lines, self._dropped
                self._lines, self._size, self._dropped = [], 0, 0
            if dropped:
                lines.append(
                    json.dumps(
                        {
                            "level": "warning",
                            "message": f"{dropped} log lines dropped: the log stream stalled",
                        }
                    )
                )
            if lines:
                try:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # a closed stderr must not take the proxy down

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=1)
        self.flush()
        super().close()


def configure(level: int = logging.INFO) -> AccessSink:
    """Log JSON lines to stderr; returns the sink the access log writes its lines to."""
    handler = BatchedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log would duplicate ours and could carry tokens in odd clients' URLs.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler.write_line
