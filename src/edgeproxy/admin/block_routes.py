"""Admin API handlers of blocked certificates (docs/api.md "Blocked certificates"): cut off one
client certificate of a CA set now, list the set's blocks, lift one."""

from __future__ import annotations

from aiohttp import web

from edgeproxy.admin import bodies, serialize
from edgeproxy.admin.keys import PRINCIPAL, SERVICE
from edgeproxy.admin.routes import BASE, needs
from edgeproxy.domain.model import Role
from edgeproxy.service.shared import Actor

block_routes = web.RouteTableDef()
BLOCKS = f"{BASE}/ca-sets/{{caSetId}}/blocked-certificates"


@block_routes.post(BLOCKS)
@needs(Role.EDITOR)
async def block_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    body = bodies.fields(
        await bodies.json_object(request),
        required={"reason": str},
        optional={"fingerprintSha256": str, "issuer": str, "serialNumber": str, "expiresAt": str},
    )
    expires = body.get("expiresAt")
    block = await request.app[SERVICE].blocks.block(
        Actor(request[PRINCIPAL].name),
        set_id,
        fingerprint=body.get("fingerprintSha256"),
        issuer=body.get("issuer"),
        serial_number=body.get("serialNumber"),
        reason=body["reason"],
        expires_at=None if expires is None else bodies.timestamp(expires, "/expiresAt"),
    )
    now = request.app[SERVICE].blocks.now()
    return web.json_response(serialize.blocked_certificate(block, now), status=201)


@block_routes.get(BLOCKS)
@needs(Role.VIEWER)
async def list_blocked_certificates(request: web.Request) -> web.Response:
    bodies.query(request, [])
    service = request.app[SERVICE].blocks
    blocks = await service.list_blocks(bodies.int_param(request, "caSetId"))
    now = service.now()
    return web.json_response(
        {"blockedCertificates": [serialize.blocked_certificate(b, now) for b in blocks]}
    )


@block_routes.delete(f"{BLOCKS}/{{blockId}}")
@needs(Role.EDITOR)
async def unblock_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    await request.app[SERVICE].blocks.unblock(
        Actor(request[PRINCIPAL].name),
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "blockId"),
    )
    return web.Response(status=204)
