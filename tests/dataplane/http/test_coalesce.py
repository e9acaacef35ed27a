"""dataplane/http/coalesce.py: an HTTP/2 connection's writes of one turn of the loop leave as one
write when the turn ends, and nothing written is lost or reordered by a close, abort or EOF."""

from __future__ import annotations

import asyncio

from edgeproxy.dataplane.http.coalesce import CoalescedWrites


class Recorder:
    """A client stream that records what was asked of it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", b""))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading", b""))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))

    def close(self) -> None:
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.calls.append(("abort", b""))


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_leave_together_when_it_ends() -> None:
    sink = Recorder()
    stream = CoalescedWrites(sink, asyncio.get_running_loop())
    stream.write(b"HEADERS-1")
    stream.write(b"")
    stream.write(b"HEADERS-2")
    stream.write(b"DATA-2")
    assert sink.calls == []  # held while the turn runs
    await _next_turn()
    assert sink.calls == [("write", b"HEADERS-1HEADERS-2DATA-2")]
    stream.write(b"next turn")
    await _next_turn()
    assert sink.calls[1:] == [("write", b"next turn")]


async def test_a_turn_without_writes_sends_nothing() -> None:
    sink = Recorder()
    stream = CoalescedWrites(sink, asyncio.get_running_loop())
    stream.write(b"")
    await _next_turn()
    assert sink.calls == []


async def test_close_abort_and_eof_send_what_is_held_first() -> None:
    for end in ("close", "abort", "write_eof"):
        sink = Recorder()
        stream = CoalescedWrites(sink, asyncio.get_running_loop())
        stream.write(b"GOAWAY")
        getattr(stream, end)()
        assert sink.calls == [("write", b"GOAWAY"), (end, b"")]
        await _next_turn()  # the scheduled end of turn finds nothing left to send
        assert sink.calls == [("write", b"GOAWAY"), (end, b"")]


async def test_reading_is_paused_and_resumed_at_once() -> None:
    sink = Recorder()
    stream = CoalescedWrites(sink, asyncio.get_running_loop())
    stream.write(b"held")
    stream.pause_reading()
    stream.resume_reading()
    assert sink.calls == [("pause_reading", b""), ("resume_reading", b"")]
    assert stream.can_write_eof()
