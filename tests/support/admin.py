"""The test clients of the admin API: `Api` checks every exchange against the OpenAPI document;
`Admin` drives the workflow of a running node through it (create, publish, activate, settle).

Each reply is checked before the test sees it: the status is documented for the operation, the
media type is the documented one, the body validates against the documented schema, problems
carry their own status and path, and the security headers are present. Request bodies are checked
too, both ways: a request the server accepted (2xx) must be valid per the documented request
schema, and one it refused as malformed (a 400 about the body) must be invalid per it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

BASE = "/mtls-edge-truststore/v2"
CA_SET = "partners"
PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# Problem types the body parser raises: the request body itself was malformed.
BODY_PROBLEMS = {
    "unknown-field",
    "missing-field",
    "wrong-type",
    "malformed-json",
    "invalid-network",
    "invalid-alpn",  # the schema's enum, minItems and uniqueItems say it all
}
# 400s for content that fails validation (the reference API's types): the body itself was
# well-formed, so its schema must accept it.
CONTENT_PROBLEMS = {
    "certificate-validation-failure",
    "certificate-validation-failure-create",
    "certificate-validation-failure-update",
    "certificate-validation-failure-activate",
    "crl-validation-failure",
}
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
_UNSET: Any = object()


def slug(uri: str) -> str:
    """`https://edgeproxy.dev/problems/expired` → `expired`."""
    return uri.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content_type: str
    text: str
    body: Any

    @property
    def type(self) -> str:
        """The problem type's slug."""
        return slug(self.body["type"])

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(type slug, pointer) of each error of a problem."""
        return [(slug(e["type"]), e["pointer"]) for e in self.body["errors"]]


class OpenApiChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._operations: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for template, item in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, operation in item.items():
                self._operations.append((method.upper(), pattern, operation))
        self._validators: dict[str, Draft202012Validator] = {}

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        found = [op for m, p, op in self._operations if m == method and p.match(path)]
        assert len(found) <= 1, f"{method} {path} matches several documented operations"
        return found[0] if found else None

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        """A validator for a schema of the document (its `#/components/...` refs resolve)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            root = {"components": self.document["components"], "allOf": [schema]}
            self._validators[key] = Draft202012Validator(
                root, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return self._validators[key]

    def check(
        self,
        method: str,
        path: str,
        reply: Reply,
        sent: Any = _UNSET,
        query: Mapping[str, str] | None = None,
    ) -> None:
        where = f"{method} {path} → {reply.status}"
        for name, value in SECURITY_HEADERS.items():
            assert reply.headers.get(name) == value, f"{where}: header {name}"
        operation = self.operation(method, path)
        if operation is None:  # the router's own 404/405 for what is not served
            assert reply.status in (404, 405), f"{where}: undocumented operation"
            documented = {"content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
        else:
            assert str(reply.status) in operation["responses"], f"{where}: undocumented status"
            documented = operation["responses"][str(reply.status)]
        content = documented.get("content")
        if content is None:
            assert reply.text == "", f"{where}: documented without a body"
        else:
            (media_type, spec), *_ = content.items()
            assert reply.content_type == media_type, f"{where}: {reply.content_type}"
            errors = sorted(self.validator(spec["schema"]).iter_errors(reply.body), key=str)
            assert not errors, f"{where}: body breaks the documented schema: {errors[0]}"
        if reply.content_type == PROBLEM:
            assert reply.body["status"] == reply.status, where
            assert reply.body["instance"] == unquote(path), where
        if reply.status == 401:
            assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer "), where
        if operation is not None and sent is not _UNSET and "requestBody" in operation:
            self._check_request(operation, sent, reply, where)
        if operation is not None and query and 200 <= reply.status < 300:
            for name, value in query.items():
                assert self._query_valid(operation, name, value), (
                    f"{where}: the server accepted {name}={value!r}, which its schema refuses"
                )

    def _query_valid(self, operation: dict[str, Any], name: str, value: str) -> bool:
        for entry in operation.get("parameters", []):
            parameter = self.document["components"]["parameters"][entry["$ref"].rsplit("/", 1)[1]]
            if parameter["in"] == "query" and parameter["name"] == name:
                schema = parameter["schema"]
                # A query value is text; an integer parameter is valid when the text is one.
                if schema.get("type") == "integer":
                    if not value.lstrip("-").isdigit():
                        return False
                    return self.validator(schema).is_valid(int(value))
                return self.validator(schema).is_valid(value)
        return False  # undocumented: the server must refuse it

    def _check_request(
        self, operation: dict[str, Any], sent: Any, reply: Reply, where: str
    ) -> None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        valid = self.validator(schema).is_valid(sent)
        if 200 <= reply.status < 300:
            assert valid, f"{where}: the server accepted a body its schema refuses"
        if reply.status == 400 and reply.type in BODY_PROBLEMS:
            assert not valid, f"{where}: the server refused a body its schema accepts"
        if reply.status == 400 and reply.type in CONTENT_PROBLEMS:
            assert valid, f"{where}: {reply.type} for a body its schema refuses"


class Api:
    """`await api.post("/ca-sets", {...}, as_="editor")`: paths are under the v2 base path."""

    def __init__(
        self,
        client: TestClient | aiohttp.ClientSession,
        checker: OpenApiChecker,
        tokens: Mapping[str, str],
        *,
        origin: str = "",
    ) -> None:
        self.client = client
        self.checker = checker
        self.tokens = tokens
        self.origin = origin  # "http://127.0.0.1:PORT" for a real server, "" for a TestClient

    async def call(
        self,
        method: str,
        path: str,
        body: Any = _UNSET,
        *,
        as_: str | None = "admin",
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        base: bool = True,
    ) -> Reply:
        full = (BASE if base else "") + path
        sent_headers = dict(headers or {})
        if as_ is not None:
            sent_headers.setdefault("Authorization", f"Bearer {self.tokens[as_]}")
        if body is not _UNSET:
            data = json.dumps(body).encode()
        if data is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        async with self.client.request(
            method, self.origin + full, data=data, params=params, headers=sent_headers
        ) as response:
            raw = await response.read()
            text = raw.decode()
            content_type = response.content_type if raw else ""
            reply = Reply(
                status=response.status,
                headers=response.headers,
                content_type=content_type,
                text=text,
                body=json.loads(text) if content_type.endswith("json") else None,
            )
        self.checker.check(method, full, reply, body, params)
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = _UNSET, **kw: Any) -> Reply:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any = _UNSET, **kw: Any) -> Reply:
        return await self.call("PUT", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)


class ApiError(AssertionError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} → {status}: {body}")
        self.status = status
        self.body = body


Poll = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]


class Admin:
    """A running node's admin API with the admin token, over real HTTP, each exchange checked
    by `Api`; `call` returns the body of an expected status and raises `ApiError` otherwise."""

    def __init__(self, api: Api, poll: Poll) -> None:
        self.api = api
        self._poll = poll

    async def call(
        self, method: str, path: str, body: Any = None, *, expect: Iterable[int] = (200,)
    ) -> Any:
        reply = await self.api.call(method, path, _UNSET if body is None else body)
        if reply.status not in tuple(expect):
            raise ApiError(method, path, reply.status, reply.body)
        return reply.body

    async def create_set(self, name: str = CA_SET) -> int:
        created = await self.call("POST", "/ca-sets", {"caSetName": name}, expect=(201,))
        return int(created["caSetId"])

    async def create_version(self, set_id: int, pems: Sequence[str]) -> int:
        body = {
            "allowInsecureSha1": False,
            "certificates": [{"certificatePem": pem} for pem in pems],
        }
        created = await self.call("POST", f"/ca-sets/{set_id}/versions", body, expect=(201,))
        return int(created["version"])

    async def activate(
        self, set_id: int, version: int, network: str = "STAGING", *, acknowledge: bool = True
    ) -> Any:
        """Activate; by default past the clients it would refuse (tests of other concerns drop
        CAs their clients used: tests/e2e/test_safe_changes.py is the one that is refused)."""
        path = f"/ca-sets/{set_id}/versions/{version}/activate"
        body = {"network": network, "acknowledgeImpact": acknowledge or None}
        return await self.call("POST", path, body, expect=(202,))

    async def deactivate(
        self, set_id: int, version: int, network: str = "STAGING", *, force: bool = False
    ) -> Any:
        path = f"/ca-sets/{set_id}/versions/{version}/deactivate"
        return await self.call("POST", path, {"network": network, "force": force}, expect=(202,))

    async def activation(self, set_id: int, activation: Mapping[str, Any]) -> Any:
        path = (
            f"/ca-sets/{set_id}/versions/{activation['version']}"
            f"/activations/{activation['activationId']}"
        )
        return await self.call("GET", path)

    async def settle(self, set_id: int, activation: Mapping[str, Any]) -> Any:
        """Poll an activation until it is no longer IN_PROGRESS (bounded); return its last state."""

        async def done() -> Any:
            state = await self.activation(set_id, activation)
            return state if state["activationStatus"] != "IN_PROGRESS" else None

        return await self._poll(done, f"activation {activation['activationId']} to settle")

    async def publish(self, pems: Sequence[str], network: str = "STAGING") -> tuple[int, int]:
        """Create the set (if needed) and a version of `pems`, activate it, wait for COMPLETE."""
        sets = await self.call("GET", "/ca-sets", None)
        found = [s["caSetId"] for s in sets["caSets"] if s["caSetName"] == CA_SET]
        set_id = found[0] if found else await self.create_set()
        version = await self.create_version(set_id, pems)
        final = await self.settle(set_id, await self.activate(set_id, version, network))
        assert final["activationStatus"] == "COMPLETE", final
        return set_id, version
