"""Log files reopened by path (logrotate), and the human text format."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edgeproxy.runtime.logfiles import LogFile, text_line
from edgeproxy.runtime.logs import BatchedHandler, TextFormatter


def test_reopen_writes_to_a_new_file_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "edge.log"
    handler = BatchedHandler(LogFile(path), interval=60)
    handler.write_line("before")
    handler.flush()
    path.rename(tmp_path / "edge.log.1")
    handler.write_line("still old")
    handler.reopen()  # flushes what was queued into the old file first
    handler.write_line("after")
    handler.close()
    assert (tmp_path / "edge.log.1").read_text() == "before\nstill old\n"
    assert path.read_text() == "after\n"


def test_text_lines_read_like_the_json_ones() -> None:
    line = json.dumps(
        {
            "time": "2026-01-01T00:00:00+00:00",
            "level": "info",
            "logger": "edgeproxy.access",
            "message": "handshake failed",
            "verify_reason": "unknown_ca",
            "client_subject": "CN=bob,O=Partner Ltd",
            "ca_set_version": 3,
            "client_serial": None,
        }
    )
    assert text_line(line) == (
        "2026-01-01T00:00:00+00:00 info edgeproxy.access handshake failed "
        'verify_reason=unknown_ca client_subject="CN=bob,O=Partner Ltd" ca_set_version=3 '
        "client_serial=-"
    )


def test_the_text_formatter_keeps_extra_fields() -> None:
    record = logging.LogRecord(
        "edgeproxy.node", logging.WARNING, "", 0, "store %s", ("down",), None
    )
    record.error = 'timeout "5s"'
    text = TextFormatter().format(record)
    assert ' warning edgeproxy.node store down error="timeout \\"5s\\""' in text
