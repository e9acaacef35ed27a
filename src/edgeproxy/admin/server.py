"""Running the admin role: the API listener plus the reconciler that advances activations."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, replace

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.admin.metrics import ConvergenceMetrics
from edgeproxy.admin.sessions import SessionStore
from edgeproxy.config.model import AdminConfig
from edgeproxy.config.values import is_loopback
from edgeproxy.runtime.tasks import TaskGroup, every
from edgeproxy.runtime.weblistener import WebListener
from edgeproxy.service.truststore import Truststore

log = logging.getLogger(__name__)
RECONCILE_INTERVAL = 0.2
METRICS_INTERVAL = 1.0  # seconds between two reads of the convergence metrics


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
    service: Truststore

    def __post_init__(self) -> None:
        self._authenticator = TokenAuthenticator(self.config.tokens)
        self._sessions = SessionStore(self.config.console_idle_timeout)
        app = create_admin_app(
            self.service,
            self._authenticator,
            max_body_bytes=self.config.max_body_bytes,
            sessions=self._sessions,
        )
        self._listener = WebListener(
            app, self.config.listen, key="admin.listen", ssl_context=_server_tls(self.config)
        )
        self._tasks = TaskGroup()
        # Registered on the node's /metrics by node/run.py.
        self.metrics = ConvergenceMetrics(self.service)

    async def start(self) -> None:
        await self._listener.start()
        self._tasks.spawn(
            every(RECONCILE_INTERVAL, self.service.reconciler.reconcile, "activation reconcile"),
            "reconciler",
        )
        self._tasks.spawn(
            every(METRICS_INTERVAL, self.metrics.refresh, "convergence metrics"),
            "convergence-metrics",
        )

    @property
    def port(self) -> int:
        return self._listener.port

    def reload(self, config: AdminConfig) -> None:
        """SIGHUP: new tokens and the console's idle timeout take effect at once (a session
        whose token is gone ends); the listener and body limit need a restart."""
        if (config.listen, config.tls_certificate, config.tls_private_key) != (
            self.config.listen,
            self.config.tls_certificate,
            self.config.tls_private_key,
        ) or config.max_body_bytes != self.config.max_body_bytes:
            log.warning("admin listener settings changed: they take effect at the next restart")
        self._authenticator.replace(config.tokens)
        self._sessions.idle_timeout = config.console_idle_timeout
        self.config = replace(
            self.config, tokens=config.tokens, console_idle_timeout=config.console_idle_timeout
        )

    async def stop(self) -> None:
        await self._tasks.close()
        await self._listener.stop()
