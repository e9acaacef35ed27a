"""A raw HTTP/2 client for the tests: the `h2` library over a real TLS socket, so a test can send
what well-behaved clients never do (floods, tiny windows) and read every event it gets back."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from types import UnionType

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, Event
from h2.exceptions import ProtocolError

TIMEOUT = 10.0


class H2Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.events: list[Event] = []
        self.closed = False

    @classmethod
    async def connect(
        cls, port: int, ctx: ssl.SSLContext, sni: str, settings: dict[int, int] | None = None
    ) -> H2Raw:
        ctx.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=sni), TIMEOUT
        )
        raw = cls(reader, writer)
        raw.h2.initiate_connection()
        if settings:
            raw.h2.update_settings(settings)
        await raw.flush()
        return raw

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, ssl.SSLError):
                self.closed = True

    def request(
        self, authority: str, path: str, end: bool = True, extra: Sequence[tuple[str, str]] = ()
    ) -> int:
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", authority)]
        self.h2.send_headers(sid, [*headers, (":path", path), *extra], end_stream=end)
        return sid

    async def read(
        self, until: type[Event] | UnionType | None = None, limit: int = 10_000
    ) -> list[Event]:
        """Events until one of type `until` (`A | B`: either; or EOF); bounded by `limit` reads
        and TIMEOUT."""
        got: list[Event] = []
        async with asyncio.timeout(TIMEOUT):
            for _ in range(limit):
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, ssl.SSLError):
                    data = b""
                if not data:
                    self.closed = True
                    break
                try:
                    events = self.h2.receive_data(data)
                except ProtocolError:
                    # h2's client side ends at the first GOAWAY, although a server may finish
                    # the streams it names (RFC 9113 section 6.8): the rest is not read here.
                    if self.goaway() is None and not any(
                        isinstance(e, ConnectionTerminated) for e in got
                    ):
                        raise
                    events = []
                got += events
                await self.flush()
                if until is not None and any(isinstance(e, until) for e in events):
                    break
        self.events += got
        return got

    def goaway(self) -> ConnectionTerminated | None:
        found = [e for e in self.events if isinstance(e, ConnectionTerminated)]
        return found[0] if found else None

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
