"""Running the admin role: the API listener plus the reconciler that advances activations."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.config import AdminConfig
from edgeproxy.config_values import is_loopback
from edgeproxy.fleet import FleetService
from edgeproxy.service import TruststoreService
from edgeproxy.tasks import TaskGroup, every

RECONCILE_INTERVAL = 0.2


def _server_tls(config: AdminConfig) -> ssl.SSLContext | None:
    if config.tls_certificate is None or config.tls_private_key is None:
        if not is_loopback(config.listen.host):
            # The config parser refuses this too; the check here keeps the rule in force for
            # any caller that builds an AdminConfig by hand.
            raise ValueError("admin.listen is not loopback: admin.tls_certificate is required")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_certificate, config.tls_private_key)
    return context


@dataclass
class AdminRole:
    config: AdminConfig
    service: TruststoreService
    fleet: FleetService

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._tasks = TaskGroup()

    async def start(self) -> None:
        app = create_admin_app(
            self.service,
            self.fleet,
            TokenAuthenticator(self.config.tokens),
            max_body_bytes=self.config.max_body_bytes,
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.config.listen.host,
            self.config.listen.port,
            ssl_context=_server_tls(self.config),
        )
        await site.start()
        self._tasks.spawn(
            every(RECONCILE_INTERVAL, self.fleet.reconcile, "activation reconcile"), "reconciler"
        )

    @property
    def port(self) -> int:
        """The bound port (useful when the config asked for port 0)."""
        assert self._runner is not None
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._tasks.close()
        if self._runner is not None:
            await self._runner.cleanup()
