"""The test origin (aiohttp, recording what it receives) and the handle `start_proxy` returns."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from edgeproxy.dataplane.http import AccessRecord, ProxyContext


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body_length: int
    body_sha256: str

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


@dataclass
class Origin:
    """An aiohttp origin that records every request and which TCP connections carried them."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    got_first_mib: asyncio.Event = field(default_factory=asyncio.Event)
    release_rest: asyncio.Event = field(default_factory=asyncio.Event)
    stream_sent: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def accepts(self) -> int:
        return len(self.peers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(request.transport.get_extra_info("peername")[:2])  # type: ignore[union-attr]
        if "hold" in request.query:  # do not read the body until released
            await asyncio.wait_for(self.release_rest.wait(), 10)
        digest, length = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 16):
            digest.update(chunk)
            length += len(chunk)
            if length >= 1 << 20:
                self.got_first_mib.set()
        self.requests.append(
            Seen(
                request.method,
                request.path_qs,
                [(k.decode(), v.decode()) for k, v in request.raw_headers],
                length,
                digest.hexdigest(),
            )
        )
        query = request.query
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if "stream" in query:
            return await self._stream(request, int(query["stream"]), "gate" in query)
        resp = web.json_response({"path": request.path_qs, "length": length})
        if "hop" in query:
            resp.headers.update({"Connection": "X-Resp-Hop", "X-Resp-Hop": "1", "Via": "1.1 app"})
        if "close" in query:
            resp.force_close()
        return resp

    async def _stream(self, request: web.Request, size: int, gate: bool) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        piece = bytes(range(256)) * 256  # 64 KiB
        sent = 0
        while sent < size:
            await resp.write(piece[: size - sent])
            sent += min(len(piece), size - sent)
            self.stream_sent = sent
            if gate and sent == 1 << 20:
                await asyncio.wait_for(self.release_rest.wait(), 10)
        await resp.write_eof()
        return resp

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        self.peers.add(request.transport.get_extra_info("peername")[:2])  # type: ignore[union-attr]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws


@dataclass
class Proxy:
    port: int
    context: ProxyContext
    records: list[AccessRecord]


class Recorder:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    def request_done(self, record: AccessRecord) -> None:
        self.records.append(record)


StartProxy = Callable[..., Awaitable[Proxy]]
