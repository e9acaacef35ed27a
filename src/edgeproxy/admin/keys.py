"""Typed application state keys of the admin app."""

from __future__ import annotations

from aiohttp import web

from edgeproxy.admin.auth import Principal, TokenAuthenticator
from edgeproxy.admin.sessions import SessionStore
from edgeproxy.service.truststore import Truststore

SERVICE = web.AppKey("service", Truststore)
AUTH = web.AppKey("auth", TokenAuthenticator)
SESSIONS = web.AppKey("sessions", SessionStore)
PRINCIPAL = web.RequestKey("principal", Principal)
