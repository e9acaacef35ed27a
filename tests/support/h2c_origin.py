"""An h2c origin for the tests (HTTP/2 with prior knowledge, on 127.0.0.1): the `h2` library's
server side over asyncio, keeping each request it receives (headers, body, trailers) and the TCP
connections that carried them.

By path: `/big/N` answers N patterned bytes, within the edge's flow-control windows; `/echo`
answers the request body (read whole, credited as it arrives); `/reset` sends its head, a few
bytes, then RST_STREAM; `/reset-early` resets before any head; `/drop` sends its head and a few
bytes and closes the connection; `/goaway` answers, then sends GOAWAY; `/goaway-first` sends
GOAWAY naming this stream, then answers; `/hold` answers once `release` is set. Every other
path answers `ok:<path>`. Every answer ends with the trailer `x-origin-trailer: done`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from support.origin import CHUNK, pattern

TRAILER = (b"x-origin-trailer", b"done")


def patterned(size: int) -> bytes:
    """`size` bytes of the recording origin's pattern (support.origin)."""
    return b"".join(pattern(at, min(CHUNK, size - at)) for at in range(0, size, CHUNK))


@dataclass
class H2cRequest:
    headers: dict[bytes, bytes]
    body: bytearray = field(default_factory=bytearray)
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    connection: int = 0  # which TCP connection (0, 1, ... in accept order)
    reset: bool = False  # the edge reset the stream


@dataclass
class H2cOrigin:
    requests: list[H2cRequest] = field(default_factory=list)
    connections: int = 0
    max_streams: int | None = None  # SETTINGS_MAX_CONCURRENT_STREAMS to announce (None: h2's)
    port: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _open: dict[asyncio.StreamWriter, asyncio.Task[None]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"h2c://127.0.0.1:{self.port}"

    def paths(self) -> list[bytes]:
        return [r.headers[b":path"] for r in self.requests]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection, and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
            for writer in self._open:
                writer.transport.abort()
            if self._open:
                await asyncio.wait(self._open.values(), timeout=5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._open[writer] = task
        h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        if self.max_streams is not None:  # in the first SETTINGS, as servers announce it
            h2.local_settings = Settings(
                client=False,
                initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams},
            )
        h2.initiate_connection()
        writer.write(h2.data_to_send())
        open_: dict[int, H2cRequest] = {}
        windows = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(65536):
                for event in h2.receive_data(data):
                    if isinstance(event, RequestReceived):
                        request = H2cRequest(dict(event.headers or ()), connection=number)
                        open_[event.stream_id] = request
                        self.requests.append(request)
                    elif isinstance(event, DataReceived):
                        open_[event.stream_id].body += event.data or b""
                        h2.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id
                        )
                    elif isinstance(event, TrailersReceived):
                        open_[event.stream_id].trailers = dict(event.headers or ())
                    elif isinstance(event, StreamEnded):
                        sid = event.stream_id
                        answer = self._answer(h2, writer, sid, open_[sid], windows)
                        answering = asyncio.get_running_loop().create_task(answer)
                        tasks.add(answering)
                        answering.add_done_callback(tasks.discard)
                    elif isinstance(event, StreamReset):
                        if event.stream_id in open_:
                            open_[event.stream_id].reset = True
                    elif isinstance(event, WindowUpdated):
                        windows.set()
                    elif isinstance(event, ConnectionTerminated):
                        return
                writer.write(h2.data_to_send())
        except (ConnectionError, KeyError):
            return
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            self._open.pop(writer, None)

    async def _answer(
        self,
        h2: H2Connection,
        writer: asyncio.StreamWriter,
        sid: int,
        request: H2cRequest,
        windows: asyncio.Event,
    ) -> None:
        path = request.headers[b":path"]
        if path == b"/reset-early":
            h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            writer.write(h2.data_to_send())
            return
        if path.partition(b"?")[0] == b"/hold":
            await self.release.wait()
        if path == b"/goaway-first":  # a graceful shutdown: GOAWAY, then this stream's answer
            # Made with hyperframe: h2's close_connection() would refuse the answer after it.
            writer.write(GoAwayFrame(0, last_stream_id=sid, error_code=0).serialize())
        h2.send_headers(sid, [(b":status", b"200"), (b"content-type", b"text/plain")])
        if path in (b"/reset", b"/drop"):
            h2.send_data(sid, b"partial")
            if path == b"/reset":
                h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            writer.write(h2.data_to_send())
            if path == b"/drop":
                writer.transport.abort()
            return
        if path.startswith(b"/big/"):
            body = patterned(int(path[5:]))
        elif path == b"/echo":
            body = bytes(request.body)
        else:
            body = b"ok:" + path
        while body:
            size = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size, len(body))
            if size <= 0:
                windows.clear()
                writer.write(h2.data_to_send())
                await writer.drain()
                await windows.wait()
                continue
            h2.send_data(sid, body[:size])
            body = body[size:]
        h2.send_headers(sid, [TRAILER], end_stream=True)
        if path == b"/goaway":
            h2.close_connection(last_stream_id=sid)
        writer.write(h2.data_to_send())
