"""Admin API handlers of safe trust changes (docs/api.md): the impact of a version on the clients
seen, the diff of two versions, and rollback."""

from __future__ import annotations

from aiohttp import web

from edgeproxy.admin import bodies, serialize
from edgeproxy.admin.keys import PRINCIPAL, SERVICE
from edgeproxy.admin.routes import needs
from edgeproxy.domain.errors import BadRequest
from edgeproxy.domain.model import Role
from edgeproxy.service.shared import Actor

safety_routes = web.RouteTableDef()
BASE = serialize.BASE
_VERSION = f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}"


@safety_routes.get(f"{_VERSION}/impact")
@needs(Role.VIEWER)
async def get_impact(request: web.Request) -> web.Response:
    network = bodies.required_query(bodies.query(request, ["network"]), "network")
    found = await request.app[SERVICE].safety.impact(
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
        bodies.network(network, ""),
    )
    return web.json_response(serialize.impact(found))


@safety_routes.get(f"{_VERSION}/diff")
@needs(Role.VIEWER)
async def get_version_diff(request: web.Request) -> web.Response:
    before = bodies.decimal(
        bodies.required_query(bodies.query(request, ["from"]), "from"), bodies.MAX_ID
    )
    if before is None:
        raise BadRequest("invalid-query-parameter", "from must be a version number")
    found = await request.app[SERVICE].safety.diff(
        bodies.int_param(request, "caSetId"), before, bodies.int_param(request, "version")
    )
    return web.json_response(serialize.version_diff(found))


@safety_routes.post(f"{BASE}/ca-sets/{{caSetId}}/rollback")
@needs(Role.ADMIN)
async def rollback(request: web.Request) -> web.Response:
    bodies.query(request, [])
    network, acknowledged = bodies.activation(await bodies.json_object(request))
    set_id = bodies.int_param(request, "caSetId")
    service = request.app[SERVICE]
    target = await service.safety.rollback_target(set_id, network)
    activation = await service.activations.activate(
        Actor(request[PRINCIPAL].name), set_id, target, network, acknowledge_impact=acknowledged
    )
    return web.json_response(serialize.activation(activation), status=202)
