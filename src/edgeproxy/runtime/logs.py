"""Process logging: one JSON object per line (or a text line, `log.format`), on stderr or in a
file reopened on SIGUSR1 (`log.file`); the access log with them or in a file of its own
(docs/operations.md "Logs")."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from edgeproxy.config.model import LogConfig
from edgeproxy.runtime.logfiles import LogFile, text_line, text_of

# Attributes every LogRecord has; anything else passed via `extra=` becomes a JSON field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# One encoder for every line: json.dumps(default=...) would build a new one per call.
_ENCODE = json.JSONEncoder(default=str).encode
encode_json = _ENCODE  # the same encoding, for lines built in parts (dataplane.observe)
AccessSink = Callable[[str], None]
# The last whole second utc_iso formatted, and its text: one tuple, so a thread that reads it
# never pairs one second with another's text.
_last_second: tuple[float, str] = (math.nan, "")


def utc_iso(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat()`, the date and time of day formatted
    once per second: the access log stamps every request, and the datetime round trip was a
    visible part of a keep-alive request's CPU."""
    # fromtimestamp's own rounding: to the nearest microsecond, ties to even.
    fraction, second = math.modf(created)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    global _last_second
    last, text = _last_second
    if second != last:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]  # without "+00:00"
        _last_second = (second, text)
    return f"{text}.{micro:06d}+00:00" if micro else f"{text}+00:00"


def json_line(logger: str, message: str, fields: dict[str, Any], created: float) -> str:
    """One log line in the shape JsonFormatter writes, built directly (the access log's path)."""
    return _ENCODE(
        {
            "time": utc_iso(created),
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
        return _ENCODE(self.entry(record))

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "time": utc_iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return entry


class TextFormatter(JsonFormatter):
    """`log.format = "text"`: the same entries, as `time level logger message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        preformatted = getattr(record, "json_line", None)
        if preformatted is not None:
            return text_line(str(preformatted))
        return text_of(self.entry(record))


class LogStream(Protocol):
    """What BatchedHandler writes to: stderr, or a LogFile."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


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
        stream: LogStream,
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
            before = self._size
            self._lines.append(line)
            self._size += len(line) + 1
            # Once per batch: until the flusher (on the loop's core too) swaps the buffer out,
            # every further wake would only cost the loop a lock and a notify per request.
            urgent = urgent or before < self._batch_bytes <= self._size
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

    def reopen(self) -> None:
        """Open a log file again by its path (after logrotate moved it); stderr stays."""
        if isinstance(self._stream, LogFile):
            self.flush()
            with self._write_lock:
                self._stream.reopen()

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


_handlers: list[BatchedHandler] = []
_reopen_hooks: list[Callable[[], None]] = []
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _handler(file: Path | None, formatter: logging.Formatter) -> BatchedHandler:
    handler = BatchedHandler(sys.stderr if file is None else LogFile(file))
    handler.setFormatter(formatter)
    _handlers.append(handler)
    return handler


def configure(settings: LogConfig | None = None) -> AccessSink:
    """Set up the process's logging from `[log]`; returns the sink the access log writes its
    lines to (JSON lines, turned into text for `format = "text"`).

    `level` applies to every logger but the access log, which `access` switches: off, request
    lines go; refused handshakes are always logged (sampled, docs/dataplane.md)."""
    settings = settings or LogConfig()
    for old in _handlers:
        old.close()
    _handlers.clear()
    formatter = TextFormatter() if settings.format == "text" else JsonFormatter()
    handler = _handler(settings.file, formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[settings.level])
    access = logging.getLogger("edgeproxy.access")
    access.setLevel(logging.INFO)
    access_handler = handler
    if settings.access_file is not None:
        access_handler = _handler(settings.access_file, formatter)
    access.handlers[:] = [] if access_handler is handler else [access_handler]
    access.propagate = access_handler is handler
    logging.getLogger("edgeproxy.access.request").setLevel(
        logging.NOTSET if settings.access else logging.WARNING
    )
    # aiohttp's own access log would duplicate ours and could carry tokens in odd clients' URLs.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if settings.format == "text":
        write = access_handler.write_line

        def as_text(line: str) -> None:
            write(text_line(line))

        return as_text
    return access_handler.write_line


def reopen() -> None:
    """SIGUSR1: open every log file again, then tell whoever asked (edge workers)."""
    for handler in _handlers:
        try:
            handler.reopen()
        except OSError as error:
            logging.getLogger(__name__).error(
                "could not reopen a log file; still writing to the old one",
                extra={"error": str(error)},
            )
    for hook in list(_reopen_hooks):
        hook()
    logging.getLogger(__name__).info("log files reopened")


def on_reopen(hook: Callable[[], None]) -> Callable[[], None]:
    """Call `hook` on every `reopen()`; returns what removes it."""
    _reopen_hooks.append(hook)
    return lambda: _reopen_hooks.remove(hook)
