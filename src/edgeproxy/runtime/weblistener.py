"""One aiohttp application on one address: the lifecycle every HTTP listener of a node shares."""

from __future__ import annotations

import json
import logging
import ssl
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from edgeproxy.config.model import HostPort
from edgeproxy.runtime.listening import listening

log = logging.getLogger(__name__)


class _GuardedRequestHandler(RequestHandler):
    """aiohttp answers a request its parser refuses (a NUL in a header value, a header line over
    8 KiB) with the parser's message as a text/plain body and logs it with a traceback, and both
    quote the offending bytes: an `Authorization` value ends up in the response and the log.
    Those requests never reach the application or its middlewares, so the answer is replaced
    here: a problem+json that names the status only, and one log line with the error's class."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, LineTooLong):
            # A request line or header field over the parser's limit: the status that says so.
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        if isinstance(exc, HttpProcessingError):
            log.info(
                "malformed HTTP request refused",
                extra={"status": int(status), "error": type(exc).__name__, "peer": request.remote},
            )
        elif exc is not None:
            # Not the client's bytes but our failure (the application's middlewares catch the
            # rest): the trace is for us; the message is aiohttp's generic one.
            log.error("error handling request", exc_info=exc, extra={"peer": request.remote})
        if request.writer.output_size > 0:
            # Part of a response went out already: only closing the connection is left.
            raise ConnectionError("response already started; cannot send an error")
        phrase = HTTPStatus(status).phrase
        response = web.Response(
            status=status,
            text=json.dumps(
                {"type": "about:blank", "title": phrase, "status": int(status), "detail": phrase}
            ),
            content_type="application/problem+json",
        )
        response.force_close()
        return response


class _GuardedServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections answer malformed requests without echoing them."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds its Server itself (with its own handler and request factory);
        # only the per-connection protocol factory changes, and _GuardedServer adds no state.
        server.__class__ = _GuardedServer
        return server


class WebListener:
    def __init__(
        self,
        app: web.Application,
        listen: HostPort,
        *,
        key: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`key`: the config key `listen` comes from, named when it cannot be bound."""
        self._app = app
        self._listen = listen
        self._key = key
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        # access_log=None: the node logs what matters itself, and never request headers (tokens).
        self._runner = GuardedAppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self._listen.host, self._listen.port, ssl_context=self._ssl_context
        )
        with listening(self._key, self._listen):
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
