"""A small synchronous client of the admin API (docs/api.md) for the operator CLI, on the stdlib
only.

The bearer token goes into one request header and nowhere else: never into a message, a URL or an
exception. Redirects are not followed (a redirect could carry the token to another host), and TLS
certificates are always verified: against the system CAs, or only the `--cacert` file when given;
there is no switch to turn verification off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.config.values import is_loopback

BASE_PATH = "/mtls-edge-truststore/v2"
DEFAULT_ADMIN_URL = "http://127.0.0.1:9000"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_PROBLEM_FIELDS = {"type", "title", "detail", "status", "instance", "errors"}


class CliError(Exception):
    """A failure reported as `error: <message>`, exiting with `exit_code`."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class ApiError(Exception):
    """The admin API answered with an error status; `problem` is its problem+json, if any."""

    status: int
    reason: str
    problem: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    exit_code = 1

    def __post_init__(self) -> None:
        super().__init__(self.status, self.reason)

    @property
    def type(self) -> str:
        return slug(str((self.problem or {}).get("type", "")))

    @property
    def detail(self) -> str:
        return str((self.problem or {}).get("detail", ""))

    @property
    def errors(self) -> list[dict[str, Any]]:
        items = (self.problem or {}).get("errors")
        return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def slug(problem_type: str) -> str:
    """`https://edgeproxy.dev/problems/expired` → `expired` (the stable part clients match on)."""
    return problem_type.rstrip("/").rsplit("/", 1)[-1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError, which we report


class AdminClient:
    def __init__(
        self, admin_url: str, token: str | None, *, cacert: str | None = None, timeout: float = 10.0
    ) -> None:
        parts = urllib.parse.urlsplit(admin_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError("--admin-url must be an http:// or https:// URL", exit_code=2)
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{parts.port}" if parts.port else ""
        # Shown in messages: no user-info (it could hold a password), no query.
        self.url = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
        path = parts.path.rstrip("/")
        self._base = (
            f"{parts.scheme}://{netloc}{path if path.endswith(BASE_PATH) else path + BASE_PATH}"
        )
        self._token = token or None
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if is_loopback(host):
            handlers.append(urllib.request.ProxyHandler({}))  # never send loopback via a proxy
        if parts.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=cacert)
            except (OSError, ssl.SSLError) as error:
                raise CliError(f"cannot load --cacert {cacert}: {error}", exit_code=2) from None
            handlers.append(urllib.request.HTTPSHandler(context=context))
        elif cacert:
            raise CliError("--cacert needs an https:// --admin-url", exit_code=2)
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        return self.call("GET", path, query=query)

    def call(
        self, method: str, path: str, *, body: Any = None, query: Mapping[str, str] | None = None
    ) -> Any:
        """The decoded JSON answer (None for an empty one); ApiError or CliError(exit 3)."""
        url = self._base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
        request.add_header("Accept", "application/json, application/problem+json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            raise self._api_error(error) from None
        except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
            raise self._unreachable(error) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(f"the admin API at {self.url} answered {status} with non-JSON") from None

    def _api_error(self, error: urllib.error.HTTPError) -> ApiError:
        try:
            raw = error.read(MAX_RESPONSE_BYTES)
            problem = json.loads(raw) if raw else None
        except (OSError, ValueError, http.client.HTTPException):
            problem = None
        if not isinstance(problem, dict) or "detail" not in problem:
            problem = None
        result = ApiError(error.code, str(error.reason), problem)
        if problem is not None:
            result.extra = {k: v for k, v in problem.items() if k not in _PROBLEM_FIELDS}
        if 300 <= error.code < 400:
            result.reason = f"redirect to {error.headers.get('Location', '?')} (not followed)"
        return result

    def _unreachable(self, error: BaseException) -> CliError:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        where = f"the admin API at {self.url}"
        if isinstance(reason, ssl.SSLCertVerificationError):
            message = (
                f"TLS verification of {where} failed ({reason.verify_message}); "
                "pass --cacert with the CA that issued its certificate"
            )
        elif isinstance(reason, ssl.SSLError):
            message = f"TLS with {where} failed ({reason.reason or reason}); is it https?"
        elif isinstance(reason, TimeoutError):
            message = f"{where} did not answer within {self.timeout:g}s"
        elif isinstance(reason, ConnectionRefusedError):
            message = f"cannot reach {where} (is edgeproxy serve running?)"
        elif isinstance(reason, http.client.HTTPException | ConnectionResetError):
            message = f"{where} broke off the connection; does it need https://?"
        else:
            message = f"cannot reach {where}: {getattr(reason, 'strerror', None) or reason}"
        return CliError(message, exit_code=3)


def resolve_set(client: AdminClient, ref: str) -> int:
    """A CA set id from `ref`: digits are an id; `name:X` or anything else is a name."""
    if ref.isdigit():
        return int(ref)
    name = ref.removeprefix("name:")
    found = client.get("/ca-sets", {"caSetNamePrefix": name}).get("caSets", [])
    # unique among live sets (docs/management.md)
    exact = [s for s in found if s.get("caSetName") == name]
    if len(exact) != 1:
        similar = sorted(str(s.get("caSetName")) for s in found)[:5]
        hint = f" (names starting so: {', '.join(similar)})" if similar else ""
        raise CliError(f"no CA set named {name!r}{hint}; `edgeproxy ca-sets list` shows them")
    return int(exact[0]["caSetId"])


def wait_for(
    first: dict[str, Any],
    fetch: Callable[[], dict[str, Any]],
    *,
    status_key: str,
    interval: float,
    timeout: float,
    on_change: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Poll until `status_key` leaves IN_PROGRESS or `timeout` passes; the last state seen."""
    deadline = time.monotonic() + timeout
    current, last = first, None
    while True:
        shown = (current.get(status_key), current.get("percentComplete"))
        if shown != last:
            on_change(current)
            last = shown
        remaining = deadline - time.monotonic()
        if current.get(status_key) != "IN_PROGRESS" or remaining <= 0:
            return current
        time.sleep(min(interval, remaining))
        current = fetch()


# -- certificate files -------------------------------------------------------------------------

_BOUNDARY = re.compile(r"-----(BEGIN|END) ?([^\r\n-]{0,200})-----")


@dataclass(frozen=True)
class CertificateSource:
    """One PEM block of an uploaded file: becomes one `certificates[]` entry."""

    where: str  # "bundle.pem#2": file and 0-based block index, to explain a JSON pointer
    pem: str
    fingerprint: str | None  # SHA-256 of the DER, as the API reports it; None if undecodable


def read_certificate_files(paths: Sequence[str]) -> list[CertificateSource]:
    """Split each file into its PEM blocks, refusing (before anything is sent) any private key."""
    out: list[CertificateSource] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as error:
            raise CliError(f"cannot read {path}: {error.strerror or error}", exit_code=2) from None
        except UnicodeDecodeError:
            message = f"{path} is not PEM text (DER? convert it: openssl x509 -inform der)"
            raise CliError(message, exit_code=2) from None
        out.extend(_split(path, text))
    return out


def _refuse_private_key(path: str, boundaries: Sequence[re.Match[str]], what: str) -> None:
    # Only the label is ever shown: the body of a key block must not reach the terminal
    # (docs/management.md).
    key = next((m.group(2) for m in boundaries if "PRIVATE KEY" in m.group(2)), None)
    if key is not None:
        raise CliError(
            f"{path} holds a private key ({key[:40]} block); remove it from the file and upload "
            f"{what} only. Nothing was sent.",
            exit_code=2,
        )


def _split(path: str, text: str) -> list[CertificateSource]:
    boundaries = list(_BOUNDARY.finditer(text))
    _refuse_private_key(path, boundaries, "CA certificates")
    blocks: list[CertificateSource] = []
    opened: re.Match[str] | None = None
    for match in boundaries:
        index = len(blocks)
        if match.group(1) == "BEGIN":
            if opened is not None:
                raise CliError(f"{path}: PEM block {index} has no END line", exit_code=2)
            opened = match
        elif opened is None or opened.group(2).strip() != match.group(2).strip():
            raise CliError(f"{path}: PEM block {index} has an unmatched END line", exit_code=2)
        else:
            body = text[opened.end() : match.start()]
            blocks.append(
                CertificateSource(
                    f"{path}#{index}",
                    text[opened.start() : match.end()] + "\n",
                    _fingerprint(body) if opened.group(2).strip() == "CERTIFICATE" else None,
                )
            )
            opened = None
    if opened is not None:
        raise CliError(f"{path}: PEM block {len(blocks)} has no END line", exit_code=2)
    if not blocks:
        raise CliError(f"{path}: no -----BEGIN CERTIFICATE----- block found", exit_code=2)
    return blocks


def read_crl_file(path: str) -> str:
    """A PEM CRL file's text, refusing (before anything is sent) one that holds a private key.

    The API checks everything else (one X509 CRL block, its signer, its dates).
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", exit_code=2) from None
    except UnicodeDecodeError:
        message = f"{path} is not PEM text (DER? convert it: openssl crl -inform der)"
        raise CliError(message, exit_code=2) from None
    boundaries = list(_BOUNDARY.finditer(text))
    _refuse_private_key(path, boundaries, "the CRL")
    if not boundaries:
        raise CliError(f"{path}: no -----BEGIN X509 CRL----- block found", exit_code=2)
    return text


def _fingerprint(body: str) -> str | None:
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest()


def version_body(
    sources: Sequence[CertificateSource],
    *,
    allow_insecure_sha1: bool,
    require_root_certificate: bool,
    description: str | None = None,
    certificate_description: str | None = None,
) -> dict[str, Any]:
    entry_extra = {"description": certificate_description} if certificate_description else {}
    body: dict[str, Any] = {
        "allowInsecureSha1": allow_insecure_sha1,
        "requireRootCertificate": require_root_certificate,
        "certificates": [{"certificatePem": s.pem, **entry_extra} for s in sources],
    }
    if description is not None:
        body["description"] = description
    return body
