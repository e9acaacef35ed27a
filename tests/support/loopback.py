"""An aiohttp application served on 127.0.0.1 for a test: the one way test servers listen."""

from __future__ import annotations

import ssl

from aiohttp import web


async def serve_app(
    app: web.Application, port: int = 0, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """`app` on 127.0.0.1 (`port` 0: an ephemeral one, else that one again, as a restarted
    origin needs): its runner, to clean up, and the port it listens on."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    return runner, runner.addresses[0][1]
