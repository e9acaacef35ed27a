"""Admin API handlers (docs/api.md): parse → service call → serialise. Each declares the role it
needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from edgeproxy.admin import bodies, problems, serialize
from edgeproxy.admin.keys import PRINCIPAL, SERVICE
from edgeproxy.domain.errors import BadRequest
from edgeproxy.domain.model import CertificateStatus, Role
from edgeproxy.service.shared import Actor

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = web.RouteTableDef()
BASE = serialize.BASE
# The longest expiryThresholdInDays accepted: a century, far from datetime's year-9999 end.
MAX_EXPIRY_THRESHOLD_DAYS = 36_500


# The least role each handler needs, read by the auth middleware: a handler missing here (and not
# one of the public documents) is refused, so a route that forgets `needs` fails closed.
REQUIRED_ROLE: dict[Handler, Role] = {}


def needs(role: Role) -> Callable[[Handler], Handler]:
    """Mark the least role a handler needs; the auth middleware enforces it."""

    def mark(handler: Handler) -> Handler:
        REQUIRED_ROLE[handler] = role
        return handler

    return mark


def _actor(request: web.Request) -> Actor:
    return Actor(request[PRINCIPAL].name)


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


# -- CA sets -----------------------------------------------------------------------------------


@routes.post(f"{BASE}/ca-sets")
@needs(Role.EDITOR)
async def create_ca_set(request: web.Request) -> web.Response:
    bodies.query(request, [])
    body = bodies.fields(
        await bodies.json_object(request),
        required={"caSetName": str},
        optional={"description": str},
    )
    ca_set = await request.app[SERVICE].ca_sets.create_ca_set(
        _actor(request), body["caSetName"], body.get("description")
    )
    return _json(serialize.ca_set(ca_set), 201)


@routes.get(f"{BASE}/ca-sets")
@needs(Role.VIEWER)
async def list_ca_sets(request: web.Request) -> web.Response:
    params = bodies.query(request, ["caSetNamePrefix", "activatedOn"])
    activated_on = params.get("activatedOn")
    service = request.app[SERVICE]
    sets = await service.ca_sets.list_ca_sets(
        name_prefix=params.get("caSetNamePrefix"),
        # Present but empty is not absent: a script with an unset variable must not get
        # every set as if each were active.
        activated_on=bodies.network(activated_on, "") if activated_on is not None else None,
    )
    warnings = await service.crls.ca_set_warnings(sets)
    return _json({"caSets": [serialize.ca_set(s, warnings[s.id]) for s in sets]})


@routes.get(f"{BASE}/ca-sets/{{caSetId}}")
@needs(Role.VIEWER)
async def get_ca_set(request: web.Request) -> web.Response:
    bodies.query(request, [])
    service = request.app[SERVICE]
    ca_set = await service.ca_sets.get_ca_set(bodies.int_param(request, "caSetId"))
    warnings = await service.crls.ca_set_warnings([ca_set])
    return _json(serialize.ca_set(ca_set, warnings[ca_set.id]))


@routes.delete(f"{BASE}/ca-sets/{{caSetId}}")
@needs(Role.ADMIN)
async def delete_ca_set(request: web.Request) -> web.Response:
    bodies.query(request, [])
    status = await request.app[SERVICE].ca_sets.delete_ca_set(
        _actor(request), bodies.int_param(request, "caSetId")
    )
    return _json(serialize.delete_status(status), 202)


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/status/delete")
@needs(Role.VIEWER)
async def delete_status(request: web.Request) -> web.Response:
    bodies.query(request, [])
    status = await request.app[SERVICE].ca_sets.delete_status(bodies.int_param(request, "caSetId"))
    return _json(serialize.delete_status(status))


# -- versions ----------------------------------------------------------------------------------


async def _version_response(
    request: web.Request, set_id: int, number: int, status: int
) -> web.Response:
    service = request.app[SERVICE]
    ca_set = await service.ca_sets.get_ca_set(set_id)
    return _json(
        serialize.version(await service.versions.get_version(set_id, number), ca_set), status
    )


@routes.post(f"{BASE}/ca-sets/{{caSetId}}/versions")
@needs(Role.EDITOR)
async def create_version(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    draft = bodies.version_draft(await bodies.json_object(request))
    created = await request.app[SERVICE].versions.create_version(_actor(request), set_id, draft)
    return await _version_response(request, set_id, created.version, 201)


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/versions")
@needs(Role.VIEWER)
async def list_versions(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    service = request.app[SERVICE]
    ca_set = await service.ca_sets.get_ca_set(set_id)
    versions = await service.versions.list_versions(set_id)
    return _json({"versions": [serialize.version(v, ca_set) for v in versions]})


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}")
@needs(Role.VIEWER)
async def get_version(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    return await _version_response(request, set_id, bodies.int_param(request, "version"), 200)


@routes.put(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}")
@needs(Role.EDITOR)
async def update_version(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    number = bodies.int_param(request, "version")
    draft = bodies.version_draft(await bodies.json_object(request))
    await request.app[SERVICE].versions.update_version(_actor(request), set_id, number, draft)
    return await _version_response(request, set_id, number, 200)


@routes.delete(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}")
@needs(Role.EDITOR)
async def delete_version(request: web.Request) -> web.Response:
    bodies.query(request, [])
    await request.app[SERVICE].versions.delete_version(
        _actor(request),
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
    )
    return web.Response(status=204)


@routes.post(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}/clone")
@needs(Role.EDITOR)
async def clone_version(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    clone = await request.app[SERVICE].versions.clone_version(
        _actor(request), set_id, bodies.int_param(request, "version")
    )
    return await _version_response(request, set_id, clone.version, 201)


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}/certificates")
@needs(Role.VIEWER)
async def list_certificates(request: web.Request) -> web.Response:
    params = bodies.query(request, ["certificateStatus", "expiryThresholdInDays"])
    try:
        statuses = [
            CertificateStatus(s) for s in params.get("certificateStatus", "").split(",") if s
        ]
    except ValueError:
        raise BadRequest(
            "invalid-query-parameter", f"certificateStatus takes {', '.join(CertificateStatus)}"
        ) from None
    days = bodies.decimal(params.get("expiryThresholdInDays", "30"), MAX_EXPIRY_THRESHOLD_DAYS)
    if days is None:
        raise BadRequest(
            "invalid-query-parameter",
            f"expiryThresholdInDays must be an integer from 0 to {MAX_EXPIRY_THRESHOLD_DAYS}",
        )
    certificates = await request.app[SERVICE].versions.list_certificates(
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
        statuses=statuses,
        expiry_threshold=timedelta(days=days),
    )
    return _json({"certificates": [serialize.certificate(c) for c in certificates]})


@routes.post(f"{BASE}/certificates/validate")
@needs(Role.VIEWER)
async def validate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    draft = bodies.version_draft(await bodies.json_object(request))
    report = serialize.validation(request.app[SERVICE].versions.validate(draft))
    if report["valid"]:
        return _json(report)
    # 400 certificate-validation-failure (the reference API's), with the whole report.
    return problems.problem_response(
        status=400,
        type_="certificate-validation-failure",
        title="Bad request",
        detail=f"{len(report['errors'])} problem(s) with the submitted certificates",
        instance=request.path,
        errors=report["errors"],
        extra={k: report[k] for k in ("valid", "certificates", "warnings")},
    )


# -- activations -------------------------------------------------------------------------------


@routes.post(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}/activate")
@needs(Role.ADMIN)
async def activate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    network, acknowledged = bodies.activation(await bodies.json_object(request))
    activation = await request.app[SERVICE].activations.activate(
        _actor(request),
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
        network,
        acknowledge_impact=acknowledged,
    )
    return _json(serialize.activation(activation), 202)


@routes.post(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}/deactivate")
@needs(Role.ADMIN)
async def deactivate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    body = bodies.fields(
        await bodies.json_object(request), required={"network": str}, optional={"force": bool}
    )
    activation = await request.app[SERVICE].activations.deactivate(
        _actor(request),
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
        bodies.network(body["network"]),
        force=body.get("force", False),
    )
    return _json(serialize.activation(activation), 202)


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/activations")
@needs(Role.VIEWER)
async def list_activations(request: web.Request) -> web.Response:
    bodies.query(request, [])
    activations = await request.app[SERVICE].activations.list_activations(
        bodies.int_param(request, "caSetId")
    )
    return _json({"activations": [serialize.activation(a) for a in activations]})


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/versions/{{version}}/activations/{{activationId}}")
@needs(Role.VIEWER)
async def get_activation(request: web.Request) -> web.Response:
    bodies.query(request, [])
    activation = await request.app[SERVICE].activations.get_activation(
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "version"),
        bodies.int_param(request, "activationId"),
    )
    return _json(serialize.activation(activation))


# -- history and fleet -------------------------------------------------------------------------


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/activities")
@needs(Role.VIEWER)
async def list_activities(request: web.Request) -> web.Response:
    bodies.query(request, [])
    activities = await request.app[SERVICE].ca_sets.list_activities(
        bodies.int_param(request, "caSetId")
    )
    return _json({"activities": [serialize.activity(a) for a in activities]})


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/associations")
@needs(Role.VIEWER)
async def list_associations(request: web.Request) -> web.Response:
    bodies.query(request, [])
    found = await request.app[SERVICE].nodes.associations(bodies.int_param(request, "caSetId"))
    return _json({"associations": [serialize.association(a) for a in found]})


@routes.get(f"{BASE}/nodes")
@needs(Role.VIEWER)
async def list_nodes(request: web.Request) -> web.Response:
    bodies.query(request, [])
    states = await request.app[SERVICE].nodes.list_nodes()
    return _json({"nodes": [serialize.node(s.node, live=s.live, lost=s.lost) for s in states]})


@routes.delete(f"{BASE}/nodes/{{nodeName}}")
@needs(Role.ADMIN)
async def forget_node(request: web.Request) -> web.Response:
    bodies.query(request, [])
    forgotten = await request.app[SERVICE].reconciler.forget(
        _actor(request), bodies.node_name(request)
    )
    return _json(serialize.forgotten(forgotten))


# -- CRLs --------------------------------------------------------------------------------------


@routes.post(f"{BASE}/ca-sets/{{caSetId}}/crls")
@needs(Role.EDITOR)
async def add_crl(request: web.Request) -> web.Response:
    bodies.query(request, [])
    set_id = bodies.int_param(request, "caSetId")
    body = bodies.fields(
        await bodies.json_object(request),
        required={"crlPem": str},
        optional={"description": str},
    )
    state = await request.app[SERVICE].crls.add_crl(
        _actor(request), set_id, body["crlPem"], body.get("description")
    )
    return _json(serialize.crl(state), 201)


@routes.get(f"{BASE}/ca-sets/{{caSetId}}/crls")
@needs(Role.VIEWER)
async def list_crls(request: web.Request) -> web.Response:
    bodies.query(request, [])
    states = await request.app[SERVICE].crls.list_crls(bodies.int_param(request, "caSetId"))
    return _json({"crls": [serialize.crl(s) for s in states]})


@routes.delete(f"{BASE}/ca-sets/{{caSetId}}/crls/{{crlId}}")
@needs(Role.EDITOR)
async def delete_crl(request: web.Request) -> web.Response:
    bodies.query(request, [])
    await request.app[SERVICE].crls.delete_crl(
        _actor(request),
        bodies.int_param(request, "caSetId"),
        bodies.int_param(request, "crlId"),
    )
    return web.Response(status=204)
