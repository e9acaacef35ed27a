"""Typed application state keys of the admin app."""

from __future__ import annotations

from aiohttp import web

from edgeproxy.admin.auth import Principal, TokenAuthenticator
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.truststore import TruststoreService

SERVICE = web.AppKey("service", TruststoreService)
FLEET = web.AppKey("fleet", FleetService)
AUTH = web.AppKey("auth", TokenAuthenticator)
PRINCIPAL = web.RequestKey("principal", Principal)
