"""The one recording origin of the test suite: an aiohttp server on 127.0.0.1 that keeps what it
receives (method, target, headers as sent, body digest) and which TCP connections carried it.

Behaviour on request, so one server serves every test:
* paths: `/slow` answers after `SLOW_SECONDS` (drain tests); `/bytes/N` streams N patterned bytes
  with a Content-Length; `/ws` is a WebSocket echo (text as `echo:<text>`, binary reversed);
* query: `hold` waits for `release_rest` before reading the body; `sleep=S` answers after S
  seconds; `stream=N` streams N bytes chunked (`gate`: pause after the first MiB until
  `release_rest`); `hop` adds hop-by-hop response fields; `altsvc` an Alt-Svc field; `close`
  closes after the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from support.loopback import serve_app

SLOW_SECONDS = 1.0
CHUNK = 64 * 1024
MIB = 1 << 20


def pattern(offset: int, size: int) -> bytes:
    """Bytes [offset, offset+size) of a stream that is not all one byte (offset: CHUNK-aligned)."""
    block = hashlib.sha256(offset.to_bytes(8, "big")).digest() * (CHUNK // 32)
    return block[:size]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]  # as received, repeats kept
    body_sha256: str
    body_bytes: int

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, f"{name}: expected one value, got {values}"
        return values[0]


def _headers(request: web.Request) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)


def _peer(request: web.Request) -> tuple[str, int]:
    assert request.transport is not None
    host, port = request.transport.get_extra_info("peername")[:2]
    return host, port


@dataclass
class RecordingOrigin:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    got_first_mib: asyncio.Event = field(default_factory=asyncio.Event)
    release_rest: asyncio.Event = field(default_factory=asyncio.Event)
    stream_sent: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accepts(self) -> int:
        """How many TCP connections carried requests."""
        return len(self.peers)

    async def start(self) -> RecordingOrigin:
        app = web.Application(client_max_size=64 * MIB)
        app.router.add_get("/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_app(app, self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def last(self, path: str) -> Seen:
        found = [r for r in self.requests if r.path == path]
        assert found, f"the origin never saw {path}; it saw {self.paths()}"
        return found[-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(_peer(request))
        query = request.query
        if "hold" in query:  # do not read the body until released
            await asyncio.wait_for(self.release_rest.wait(), 10)
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size >= MIB:
                self.got_first_mib.set()
        self.requests.append(
            Seen(request.method, request.path_qs, _headers(request), digest.hexdigest(), size)
        )
        if request.path == "/slow":
            self.slow_started.set()
            await asyncio.sleep(SLOW_SECONDS)
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if request.path.startswith("/bytes/"):
            return await self._bytes(request, int(request.path.removeprefix("/bytes/")))
        if "stream" in query:
            return await self._stream(request, int(query["stream"]), gate="gate" in query)
        response = web.json_response({"ok": True, "path": request.path_qs, "length": size})
        if "hop" in query:
            hop = {"Connection": "X-Resp-Hop", "X-Resp-Hop": "1", "Via": "1.1 app"}
            response.headers.update(hop)
        if "altsvc" in query:  # an alternative service the edge must not advertise
            response.headers["Alt-Svc"] = 'h3=":443"; ma=86400'
        if "close" in query:
            response.force_close()
        return response

    async def _bytes(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        for offset in range(0, size, CHUNK):
            await response.write(pattern(offset, min(CHUNK, size - offset)))
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, size: int, *, gate: bool) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        piece = bytes(range(256)) * 256  # 64 KiB
        sent = 0
        while sent < size:
            await response.write(piece[: size - sent])
            sent += min(len(piece), size - sent)
            self.stream_sent = sent
            if gate and sent == MIB:
                await asyncio.wait_for(self.release_rest.wait(), 10)
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(_peer(request))
        self.requests.append(Seen(request.method, request.path_qs, _headers(request), "", 0))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:  # echo until the client closes
            if message.type is WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws
