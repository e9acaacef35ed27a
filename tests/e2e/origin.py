"""A recording origin: an aiohttp server on 127.0.0.1:0 that keeps every request's headers."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

SLOW_SECONDS = 1.0  # `/slow` answers after this long (the SIGTERM drain test)
CHUNK = 64 * 1024


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


@dataclass
class RecordingOrigin:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)
        seen = Seen(request.method, request.path_qs, headers, digest.hexdigest(), size)
        self.requests.append(seen)
        if request.path == "/slow":
            self.slow_started.set()
            await asyncio.sleep(SLOW_SECONDS)
        if request.path.startswith("/bytes/"):  # a large body, streamed in chunks
            return await self._bytes(request, int(request.path.removeprefix("/bytes/")))
        return web.json_response({"ok": True, "path": request.path_qs})

    async def _bytes(self, request: web.Request, size: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        for offset in range(0, size, CHUNK):
            await response.write(pattern(offset, min(CHUNK, size - offset)))
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers)
        self.requests.append(Seen(request.method, request.path_qs, headers, "", 0))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:  # echo until the client closes
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

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
