"""One aiohttp application on one address: the lifecycle every HTTP listener of a node shares."""

from __future__ import annotations

import ssl

from aiohttp import web

from edgeproxy.config.model import HostPort


class WebListener:
    def __init__(
        self, app: web.Application, listen: HostPort, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._app = app
        self._listen = listen
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        # access_log=None: the node logs what matters itself, and never request headers (tokens).
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self._listen.host, self._listen.port, ssl_context=self._ssl_context
        )
        await site.start()

    @property
    def port(self) -> int:
        """The bound port (useful when the config asked for port 0)."""
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
