"""An OCSP responder on 127.0.0.1 for the tests: each request is counted, held while `gate` is
closed, then answered by a backend (tests/dataplane/revocation/responders.py has the real
`openssl ocsp` one and one built with cryptography)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from support.loopback import serve_app

Backend = Callable[[bytes], Awaitable[bytes]]


class Responder:
    """aiohttp on 127.0.0.1:<ephemeral>; `gate` (when set) holds every answer until opened."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.hits = 0
        self.gate: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = await request.read()
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), 10)
        answer = await self.backend(body)
        return web.Response(body=answer, content_type="application/ocsp-response")

    async def start(self) -> Responder:
        app = web.Application()
        app.router.add_post("/ocsp", self._handle)
        self._runner, self.port = await serve_app(app)
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
