"""The client stream of an HTTP/2 connection, with its writes held to the end of the loop's turn.

Many streams share one HTTP/2 connection, and their origins often answer in the same poll of the
event loop: written at once, each response costs its own TLS record, encryption call and `send`.
Held until the turn ends (`call_soon` runs after the turn's I/O callbacks), they leave together.
HTTP/1.1 has one response in flight per connection and writes it directly.
"""

from __future__ import annotations

import asyncio

from edgeproxy.dataplane.http.links import ClientStream


class CoalescedWrites:
    """A `ClientStream` over `transport`: what is written in one turn is sent as one write when the
    turn ends, or at once before a close, an abort or an end of stream, so order is kept."""

    __slots__ = ("_call_soon", "_held", "_scheduled", "_transport")

    def __init__(self, transport: ClientStream, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._call_soon = loop.call_soon
        self._held: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._held.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        self._send_held()

    def _send_held(self) -> None:
        held = self._held
        if held:
            self._held = []
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def close(self) -> None:
        self._send_held()  # a GOAWAY written just before must still go out, before close_notify
        self._transport.close()

    def abort(self) -> None:
        self._send_held()  # as when each write went out at once: handed over before the abort
        self._transport.abort()
