"""Admin API handlers of edge certificates and their mutual-authentication bindings
(docs/api.md "Edge certificates", under /edge/v1). Same roles as the truststore: viewer reads,
editor writes edge certificates, admin changes bindings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from edgeproxy.admin import bodies, edge_serialize
from edgeproxy.admin.edge_serialize import EDGE_BASE
from edgeproxy.admin.keys import PRINCIPAL, SERVICE
from edgeproxy.admin.routes import needs
from edgeproxy.authz.parse import PolicyError, json_pointer, parse_policy, policy_json
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, MutualAuth, OcspSettings
from edgeproxy.domain.errors import BadRequest, FieldError
from edgeproxy.domain.model import Network, Role
from edgeproxy.service.edge_certificates import EdgeDraft
from edgeproxy.service.shared import Actor

edge_routes = web.RouteTableDef()
CERTS = f"{EDGE_BASE}/edge-certificates"
ONE = f"{CERTS}/{{name}}"
BINDING = f"{ONE}/mutual-authentication/{{network}}"


def _actor(request: web.Request) -> Actor:
    return Actor(request[PRINCIPAL].name)


def _name(request: web.Request) -> str:
    return request.match_info["name"]


def _network(request: web.Request) -> Network:
    return bodies.network(request.match_info["network"], "")


def _strings(value: list[Any], pointer: str) -> tuple[str, ...]:
    for i, item in enumerate(value):
        if not isinstance(item, str):
            detail = f"{pointer[1:]}[{i}] must be a string"
            raise BadRequest(
                "wrong-type", detail, (FieldError("wrong-type", detail, f"{pointer}/{i}"),)
            )
    return tuple(value)


# -- edge certificates -------------------------------------------------------------------------


@edge_routes.post(CERTS)
@needs(Role.EDITOR)
async def create_edge_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    body = bodies.fields(
        await bodies.json_object(request),
        required={
            "name": str,
            "hostnames": list,
            "origin": str,
            "certificateChainPem": str,
            "privateKeyPem": str,
        },
        optional={"default": bool, "alpn": list},
    )
    alpn = body.get("alpn")
    view = await request.app[SERVICE].edge_certificates.create_edge_certificate(
        _actor(request),
        EdgeDraft(
            name=body["name"],
            hostnames=_strings(body["hostnames"], "/hostnames"),
            origin=body["origin"],
            default=body.get("default", False),
            chain_pem=body["certificateChainPem"],
            key_pem=body["privateKeyPem"],
            alpn=_strings(alpn, "/alpn") if alpn is not None else ALPN_PROTOCOLS,
        ),
    )
    return web.json_response(edge_serialize.edge_certificate(view), status=201)


@edge_routes.get(CERTS)
@needs(Role.VIEWER)
async def list_edge_certificates(request: web.Request) -> web.Response:
    bodies.query(request, [])
    views = await request.app[SERVICE].edge_certificates.list_edge_certificates()
    return web.json_response(
        {"edgeCertificates": [edge_serialize.edge_certificate(v) for v in views]}
    )


@edge_routes.get(ONE)
@needs(Role.VIEWER)
async def get_edge_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    view = await request.app[SERVICE].edge_certificates.get_edge_certificate(_name(request))
    return web.json_response(edge_serialize.edge_certificate(view))


@edge_routes.patch(ONE)
@needs(Role.EDITOR)
async def update_edge_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    body = bodies.fields(
        await bodies.json_object(request),
        optional={"hostnames": list, "origin": str, "default": bool, "alpn": list},
    )
    hostnames, alpn = body.get("hostnames"), body.get("alpn")
    view = await request.app[SERVICE].edge_certificates.update_edge_certificate(
        _actor(request),
        _name(request),
        hostnames=_strings(hostnames, "/hostnames") if hostnames is not None else None,
        origin=body.get("origin"),
        default=body.get("default"),
        alpn=_strings(alpn, "/alpn") if alpn is not None else None,
    )
    return web.json_response(edge_serialize.edge_certificate(view))


@edge_routes.delete(ONE)
@needs(Role.EDITOR)
async def delete_edge_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    await request.app[SERVICE].edge_certificates.delete_edge_certificate(
        _actor(request), _name(request)
    )
    return web.Response(status=204)


@edge_routes.put(f"{ONE}/certificate")
@needs(Role.EDITOR)
async def rotate_edge_certificate(request: web.Request) -> web.Response:
    bodies.query(request, [])
    body = bodies.fields(
        await bodies.json_object(request),
        required={"certificateChainPem": str, "privateKeyPem": str},
    )
    view = await request.app[SERVICE].edge_certificates.rotate_edge_certificate(
        _actor(request), _name(request), body["certificateChainPem"], body["privateKeyPem"]
    )
    return web.json_response(edge_serialize.edge_certificate(view))


# -- mutual authentication ---------------------------------------------------------------------


def _ocsp(data: Mapping[str, Any]) -> OcspSettings:
    body = bodies.fields(
        data,
        optional={
            "enabled": bool,
            "failureMode": str,
            "responder": str,
            "checkIntermediates": bool,
        },
        pointer="/ocsp",
    )
    return OcspSettings(
        enabled=body.get("enabled", False),
        failure_mode=body.get("failureMode", "soft"),
        responder=body.get("responder"),
        check_intermediates=body.get("checkIntermediates", False),
    )


def mutual_auth(data: Mapping[str, Any]) -> MutualAuth:
    body = bodies.fields(
        data,
        required={"caSetName": str},
        optional={
            "mode": str,
            "onFailure": str,
            "sendCaListToClient": bool,
            "identityHeaders": list,
            "verifyDepth": int,
            "ocsp": dict,
            "authorization": dict,
        },
    )
    headers = body.get("identityHeaders")
    identity = _strings(headers, "/identityHeaders") if headers is not None else ("xfcc",)
    return MutualAuth(
        ca_set=body["caSetName"],
        mode=body.get("mode", "require"),
        on_failure=body.get("onFailure", "deny"),
        send_ca_list_to_client=body.get("sendCaListToClient", False),
        identity_headers=identity,
        verify_depth=body.get("verifyDepth", 5),
        ocsp=_ocsp(body.get("ocsp", {})),
        authorization=_authorization(body.get("authorization")),
    )


def _authorization(value: dict[str, Any] | None) -> str | None:
    """The binding's rules, parsed strictly (authz/parse.py): 400 naming the field at fault."""
    if value is None:
        return None
    try:
        return policy_json(parse_policy(value))
    except PolicyError as error:
        raise BadRequest(
            "invalid-authorization",
            str(error),
            (FieldError("invalid-authorization", error.detail, json_pointer(error.path)),),
        ) from None


@edge_routes.put(BINDING)
@needs(Role.ADMIN)
async def put_binding(request: web.Request) -> web.Response:
    bodies.query(request, [])
    auth = mutual_auth(await bodies.json_object(request))
    change = await request.app[SERVICE].bindings.bind(
        _actor(request), _name(request), _network(request), auth
    )
    return web.json_response(edge_serialize.change(change), status=202)


@edge_routes.get(BINDING)
@needs(Role.VIEWER)
async def get_binding(request: web.Request) -> web.Response:
    bodies.query(request, [])
    binding, latest = await request.app[SERVICE].bindings.get_binding(
        _name(request), _network(request)
    )
    return web.json_response(edge_serialize.binding(binding, latest))


@edge_routes.delete(BINDING)
@needs(Role.ADMIN)
async def delete_binding(request: web.Request) -> web.Response:
    bodies.query(request, [])
    change = await request.app[SERVICE].bindings.unbind(
        _actor(request), _name(request), _network(request)
    )
    return web.json_response(edge_serialize.change(change), status=202)


@edge_routes.get(f"{EDGE_BASE}/binding-changes/{{changeId}}")
@needs(Role.VIEWER)
async def get_binding_change(request: web.Request) -> web.Response:
    bodies.query(request, [])
    change = await request.app[SERVICE].bindings.get_change(bodies.int_param(request, "changeId"))
    return web.json_response(edge_serialize.change(change))
