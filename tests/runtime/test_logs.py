"""The batched log writer: lines arrive in order, warnings promptly, nothing blocks or is lost
silently when the stream stalls, and close() flushes. The access line built in parts equals the
generic encoding."""

from __future__ import annotations

import io
import json
import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.authz.policy import Decision
from edgeproxy.config.model import LogConfig
from edgeproxy.dataplane import observe
from edgeproxy.dataplane.http import AccessRecord, ConnectionFacts
from edgeproxy.runtime import logs
from edgeproxy.runtime.logs import BatchedHandler, JsonFormatter, json_line, utc_iso


class SlowStream(io.StringIO):
    """A stream whose writes block until released: a stalled stderr pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(5)
        return super().write(text)


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_are_written_in_order_and_close_flushes_them() -> None:
    stream = io.StringIO()
    handler = BatchedHandler(stream, interval=60)  # only close() will flush
    logger = _logger(handler, "test.order")
    for i in range(50):
        logger.info("line %d", i, extra={"n": i})
    assert stream.getvalue() == ""  # batched, not written per line
    handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["n"] for line in lines] == list(range(50))
    assert lines[0]["message"] == "line 0"
    assert lines[0]["level"] == "info"


def test_a_warning_is_written_without_waiting_for_the_interval() -> None:
    stream = io.StringIO()
    handler = BatchedHandler(stream, interval=60)
    logger = _logger(handler, "test.urgent")
    logger.warning("disk on fire")
    for _ in range(200):  # bounded wait for the flusher thread
        if stream.getvalue():
            break
        threading.Event().wait(0.01)
    assert "disk on fire" in stream.getvalue()
    handler.close()


def test_a_stalled_stream_drops_and_counts_lines_instead_of_growing() -> None:
    stream = SlowStream()
    handler = BatchedHandler(stream, interval=60, batch_bytes=10**9, max_bytes=2_000)
    logger = _logger(handler, "test.stall")
    for i in range(100):
        logger.info("x" * 50, extra={"n": i})
    stream.release.set()
    handler.close()
    lines = stream.getvalue().splitlines()
    kept = [json.loads(line) for line in lines[:-1]]
    assert 0 < len(kept) < 100
    assert [k["n"] for k in kept] == list(range(len(kept)))  # the first ones, in order
    assert (
        json.loads(lines[-1])["message"]
        == f"{100 - len(kept)} log lines dropped: the log stream stalled"
    )


class CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def test_a_full_batch_wakes_the_flusher_once_not_once_per_line() -> None:
    stream = io.StringIO()
    handler = BatchedHandler(stream, interval=60, batch_bytes=1_000)
    # The flusher already waits on the handler's first event, so it sleeps through this flood
    # and the buffer stays past the batch size: only the wakes asked for are counted.
    asleep = handler._wake
    wake = handler._wake = CountingEvent()
    for i in range(500):
        handler.write_line(f'{{"n": {i:04d}, "pad": "{"x" * 80}"}}')
    assert wake.sets == 1
    handler.write_line('{"level": "warning"}', urgent=True)
    assert wake.sets == 2  # a warning still wakes it at once
    asleep.set()  # let the flusher loop round to the counting event, so close() needs no timeout
    handler.close()
    assert len(stream.getvalue().splitlines()) == 501


def test_write_line_takes_preformatted_lines_in_the_formatters_shape() -> None:
    stream = io.StringIO()
    handler = BatchedHandler(stream, interval=60)
    handler.write_line(json_line("edgeproxy.access", "request", {"status": 200}, 0.0))
    handler.close()
    entry = json.loads(stream.getvalue())
    assert entry == {
        "time": "1970-01-01T00:00:00+00:00",
        "level": "info",
        "logger": "edgeproxy.access",
        "message": "request",
        "status": 200,
    }


def _request_fields(record: AccessRecord) -> dict[str, Any]:
    """The access line's fields after `time`, `level`, `logger` and `message`, in order: what the
    generic encoder is given, to compare the pre-encoded line against."""
    connection = record.connection
    decision = record.authorization
    return {
        "event": "request",
        **{name: getattr(connection, name) for name in ConnectionFacts.FIELDS},
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "duration": record.duration,
        "origin_duration": record.origin_duration,
        "revocation": record.revocation,
        "authorization": None if decision is None else decision.decision,
        "authorization_rule": None if decision is None else decision.rule,
        "authorization_reason": None if decision is None else decision.reason,
        "started": record.time,
    }


def _record(path: str, origin_duration: float | None, **connection: Any) -> AccessRecord:
    facts: dict[str, Any] = {
        "client_address": "127.0.0.1",
        "client_port": 50123,
        "edge_certificate": "api",
        "sni": "api.example.com",
        "tls_version": "TLSv1.3",
        "client_subject": 'CN=caf\u00e9 "client",O=Example',
        "client_serial": "0a1b",
        "client_fingerprint_sha256": "ab" * 32,
        "verify_result": "SUCCESS",
        "verify_reason": None,
        "ca_set": "clients",
        "ca_set_version": 3,
    }
    return AccessRecord(
        time=1_700_000_000.123456,
        connection=ConnectionFacts(**(facts | connection)),
        method="GET",
        path=path,
        status=200,
        bytes_in=0,
        bytes_out=1234,
        duration=0.000187,
        origin_duration=origin_duration,
        revocation="good",
    )


@pytest.mark.parametrize(
    ("path", "origin_duration", "connection", "decision"),
    [
        ("/", 0.0001, {}, None),
        ('/\u00fcber?q="x"\\\n', None, {"sni": None, "client_subject": None}, None),
        ("/a", 2.5e-05, {"verify_result": "FAILED", "verify_reason": "unknown_ca"}, None),
        ("/api/", 0.001, {}, Decision("allow", "reads", None)),
        ("/admin/", None, {}, Decision("deny", "default", "policy_denied")),
    ],
)
def test_request_line_matches_the_generic_encoding(
    path: str, origin_duration: float | None, connection: dict[str, Any], decision: Decision | None
) -> None:
    """The per-connection pre-encoded access line is byte-for-byte the generic json_line."""
    record = replace(_record(path, origin_duration, **connection), authorization=decision)
    facts = record.connection
    part = observe._connection_part(facts)
    for created in (0.0, 1_700_000_000.5, 1_700_000_001.000001):
        line = observe.request_line(part, record, created)
        fields = _request_fields(record)
        assert line == json_line("edgeproxy.access", "request", fields, created)
    assert record.client_subject == facts.client_subject  # record reads through to the connection
    assert list(json.loads(line))[-13:] == [
        "ca_set_version",
        "method",
        "path",
        "status",
        "bytes_in",
        "bytes_out",
        "duration",
        "origin_duration",
        "revocation",
        "authorization",
        "authorization_rule",
        "authorization_reason",
        "started",
    ]


@pytest.mark.parametrize(
    "created",
    [
        0.0,
        1.0,
        1733385600.0,  # a whole second: no fraction in the text
        1733385600.25,
        1733385600.9999995,  # rounds up into the next second
        1733385600.9999994,
        1733385600.0000005,  # a tie at the microsecond: ties to even
        1733385601.0000015,
        1733385599.5000005,
    ],
)
def test_utc_iso_is_datetime_isoformat(created: float) -> None:
    assert utc_iso(created) == datetime.fromtimestamp(created, UTC).isoformat()


def test_utc_iso_agrees_over_many_seconds_and_back() -> None:
    """The per-second text is remade whenever the second changes, backwards included."""
    rng = random.Random(15)
    stamps = [1733385600 + rng.uniform(-3 * 86400, 3 * 86400) for _ in range(20_000)]
    stamps += sorted(stamps[:200])  # the same seconds in order: the cached text is reused
    for created in stamps:
        assert utc_iso(created) == datetime.fromtimestamp(created, UTC).isoformat()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`configure` rewires the root logger, the access loggers and aiohttp's; put them back."""
    names = ("edgeproxy.access", "edgeproxy.access.request", "aiohttp.access")
    root = logging.getLogger()
    saved = [(root, root.handlers[:], root.level, root.propagate)]
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
    yield
    for handler in logs._handlers:
        handler.close()
    logs._handlers.clear()
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.parametrize(
    ("level", "written"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warning", ["warning", "error"]),
        ("error", ["error"]),
    ],
)
def test_log_level_filters_every_logger_but_the_access_log(
    level: str, written: list[str], tmp_path: Path, restore_logging: None
) -> None:
    path = tmp_path / "node.log"
    sink = logs.configure(LogConfig(level=level, file=path))
    node = logging.getLogger("edgeproxy.node")
    node.debug("a debug line")
    node.info("an info line")
    node.warning("a warning line")
    node.error("an error line")
    # Refused handshakes and request lines are the access log's: `level` leaves them alone.
    logging.getLogger("edgeproxy.access").info("handshake failed")
    logging.getLogger("edgeproxy.access.request").info("request")
    sink(json_line("edgeproxy.access", "request", {"path": "/"}, 0.0))
    for handler in logs._handlers:
        handler.flush()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        *(("edgeproxy.node", name) for name in written),
        ("edgeproxy.access", "info"),
        ("edgeproxy.access.request", "info"),
        ("edgeproxy.access", "info"),
    ]
    assert [line["message"] for line in lines][-3:] == ["handshake failed", "request", "request"]
