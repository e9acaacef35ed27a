"""Fixtures: a real SQLite store in tmp_path, the admin app on a test server, tokens per role, a
PKI made at test time, and edge nodes reported through the fleet service."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.admin.openapi import openapi_document
from edgeproxy.config.model import TokenConfig
from edgeproxy.domain.model import Role
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store
from edgeproxy.tls.recheck import version_judge
from support.admin import Api, OpenApiChecker
from support.pki import Pki

from .steps import TOKENS, Clock, Fleet


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="session")
def checker() -> OpenApiChecker:
    return OpenApiChecker(openapi_document())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def truststore(store: Store, clock: Clock) -> Truststore:
    return Truststore.build(store, clock=clock, judge=version_judge)


@pytest.fixture
def fleet_service(truststore: Truststore) -> FleetService:
    return truststore.fleet


@pytest.fixture
def authenticator() -> TokenAuthenticator:
    return TokenAuthenticator(
        tuple(
            TokenConfig(name, Role(role), hashlib.sha256(token.encode()).hexdigest())
            for role, (name, token) in TOKENS.items()
        )
    )


@pytest.fixture
async def api(
    aiohttp_client: Callable[..., Any],
    truststore: Truststore,
    checker: OpenApiChecker,
    authenticator: TokenAuthenticator,
) -> Api:
    app = create_admin_app(truststore, authenticator)
    client: TestClient = await aiohttp_client(app)
    return Api(client, checker, {role: token for role, (_, token) in TOKENS.items()})


@pytest.fixture
def fleet(truststore: Truststore, clock: Clock) -> Fleet:
    return Fleet(truststore, clock)
