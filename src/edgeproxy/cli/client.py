"""A small synchronous client of the admin API (docs/api.md) for the operator CLI, on the stdlib
only.

The bearer token goes into one request header and nowhere else: never into a message, a URL or an
exception. Redirects are not followed (a redirect could carry the token to another host), and TLS
certificates are always verified: against the system CAs, or only the `--cacert` file when given;
there is no switch to turn verification off.
"""

from __future__ import annotations

import hashlib
import http.client
import json
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
from edgeproxy.domain.pem import BlockProblem, PemBlock, split_pem_blocks

BASE_PATH = "/mtls-edge-truststore/v2"
EDGE_PATH = "/edge/v1"  # edge certificates and bindings: beside the truststore, not under it
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
        self._root = self._base.removesuffix(BASE_PATH)
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
        base = self._root if path.startswith(EDGE_PATH) else self._base
        url = base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
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
        shown = (
            current.get(status_key),
            current.get("percentComplete"),
            tuple(current.get("pendingNodes") or ()),
        )
        if shown != last:
            on_change(current)
            last = shown
        remaining = deadline - time.monotonic()
        if current.get(status_key) != "IN_PROGRESS" or remaining <= 0:
            return current
        time.sleep(min(interval, remaining))
        current = fetch()


# -- certificate files -------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateSource:
    """One PEM block of an uploaded file: becomes one `certificates[]` entry."""

    where: str  # "bundle.pem#2": file and 0-based block index, to explain a JSON pointer
    pem: str
    fingerprint: str | None  # SHA-256 of the DER, as the API reports it; None if undecodable


def _read_pem_text(path: str, convert: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", exit_code=2) from None
    except UnicodeDecodeError:
        message = f"{path} is not PEM text (DER? convert it: openssl {convert} -inform der)"
        raise CliError(message, exit_code=2) from None


def read_certificate_files(paths: Sequence[str]) -> list[CertificateSource]:
    """Split each file into its PEM blocks, refusing (before anything is sent) any private key."""
    out: list[CertificateSource] = []
    for path in paths:
        out.extend(_split(path, _read_pem_text(path, "x509")))
    return out


def _refuse_private_key(path: str, blocks: Sequence[PemBlock], what: str) -> None:
    # Only the label is ever shown: the body of a key block must not reach the terminal
    # (docs/management.md).
    key = next((b.label for b in blocks if b.is_private_key), None)
    if key is not None:
        raise CliError(
            f"{path} holds a private key ({key[:40]} block); remove it from the file and upload "
            f"{what} only. Nothing was sent.",
            exit_code=2,
        )


def _split(path: str, text: str) -> list[CertificateSource]:
    """Each block as written, for the API to judge; only a broken block structure stops here.

    A block whose body does not decode is still sent: the API names the problem at its pointer.
    """
    blocks = split_pem_blocks(text)
    _refuse_private_key(path, blocks, "CA certificates")
    sources: list[CertificateSource] = []
    for b in blocks:
        if b.problem is BlockProblem.UNTERMINATED:
            raise CliError(f"{path}: PEM block {b.index} has no END line", exit_code=2)
        if b.problem in (BlockProblem.STRAY_END, BlockProblem.LABEL_MISMATCH):
            raise CliError(f"{path}: PEM block {b.index} has an unmatched END line", exit_code=2)
        start, end = b.span
        fingerprint = (
            hashlib.sha256(b.der).hexdigest()
            if b.label == "CERTIFICATE" and b.der is not None
            else None
        )
        sources.append(CertificateSource(f"{path}#{b.index}", text[start:end] + "\n", fingerprint))
    if not sources:
        raise CliError(f"{path}: no -----BEGIN CERTIFICATE----- block found", exit_code=2)
    return sources


def read_server_files(chain_path: str, key_path: str) -> tuple[str, str]:
    """An edge certificate's chain and key files. The chain file must hold no key (it would be
    sent as certificates); the key file must hold one. Key text never reaches a message."""
    chain = _read_pem_text(chain_path, "x509")
    _refuse_private_key(chain_path, split_pem_blocks(chain), "the certificate chain")
    key = _read_pem_text(key_path, "pkey")
    if not any(b.is_private_key for b in split_pem_blocks(key)):
        raise CliError(f"{key_path}: no PEM private key block found", exit_code=2)
    return chain, key


def read_crl_file(path: str) -> str:
    """A PEM CRL file's text, refusing (before anything is sent) one that holds a private key.

    The API checks everything else (one X509 CRL block, its signer, its dates).
    """
    text = _read_pem_text(path, "crl")
    blocks = split_pem_blocks(text)
    _refuse_private_key(path, blocks, "the CRL")
    if not blocks:
        raise CliError(f"{path}: no -----BEGIN X509 CRL----- block found", exit_code=2)
    return text


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
