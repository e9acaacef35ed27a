"""Real clients of the edge listener: Python `ssl` (http.client), curl and `openssl s_client`.

Blocking clients run in a thread (`asyncio.to_thread`) so an in-process node keeps serving in the
test's event loop; external tools run as asyncio subprocesses. Everything has a timeout.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest

from .pki import Client, E2ePki

TIMEOUT = 10.0  # seconds for any one client operation

P = ParamSpec("P")
R = TypeVar("R")


def in_thread(blocking: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`blocking` as a coroutine function that runs it in a worker thread."""

    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(blocking, *args, **kwargs)

    return run


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port with `host` as SNI (and Host): no name resolution involved.
    `session`: a TLS session to offer for resumption (made with the same SSLContext)."""

    session: ssl.SSLSession | None = None

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(sock, server_hostname=self.host, session=self.session)


def connection(pki: E2ePki, port: int, sni: str, client: Client | None) -> PinnedHTTPSConnection:
    return PinnedHTTPSConnection(sni, port, context=pki.client_context(client), timeout=TIMEOUT)


def exchange(
    conn: http.client.HTTPConnection,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request on `conn` (which may be kept alive for the next)."""
    conn.request(method, path, body=body, headers=dict(headers or {}))
    reply = conn.getresponse()
    content = reply.read()
    return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, content)


def get(
    pki: E2ePki,
    port: int,
    sni: str,
    client: Client | None,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A new TLS connection, one request, closed."""
    conn = connection(pki, port, sni, client)
    try:
        return exchange(conn, path, {"Connection": "close", **(headers or {})})
    finally:
        conn.close()


aget = in_thread(get)


# What a refused handshake looks like to a client: TLS 1.3 clients finish their side of the
# handshake first, so the server's alert (or its close) surfaces on the first read. Not a
# timeout: a server that hangs has refused nothing.
REFUSALS = (ssl.SSLError, ConnectionError)


async def refused(
    pki: E2ePki, port: int, sni: str, client: Client | None, path: str = "/refused"
) -> BaseException:
    """Assert that a request over a new connection never gets an HTTP response."""
    try:
        response = await aget(pki, port, sni, client, path)
    except REFUSALS as error:
        return error
    raise AssertionError(f"expected a refused handshake, got HTTP {response.status}")


# -- raw sockets ----------------------------------------------------------------------------------


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the peer sends until it closes (EOF or reset), bounded in size and time."""
    deadline = time.monotonic() + TIMEOUT
    data = b""
    while len(data) < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the peer did not close within {TIMEOUT}s")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def send_raw(port: int, payload: bytes) -> bytes:
    """Connect, send `payload` (possibly nothing), return what came back before the close."""
    with socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock:
        if payload:
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                return b""
        return read_until_closed(sock)


# -- external tools -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


async def run_tool(
    *argv: str,
    stdin: bytes | None = None,
    timeout: float = TIMEOUT,
    keep_stdin_open: bool = False,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run a tool to its end (bounded). `keep_stdin_open`: write `stdin` but never send EOF;
    `env`: variables added to the environment."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=None if env is None else {**os.environ, **env},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            if keep_stdin_open:
                assert process.stdin is not None
                assert stdin is not None
                process.stdin.write(stdin)
                stdin = None
            out, err = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def tool(name: str, package: str | None = None) -> str:
    """The path of an external tool. Missing: a skip locally, a failure in CI (`make
    system-deps` installs every one of them there)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package `{package or name}`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def server_ca_file(pki: E2ePki) -> Path:
    path = pki.server_chain.parent / "server-ca.pem"
    if not path.exists():
        path.write_bytes(pki.server_ca.ca.cert_pem.bytes())
    return path


async def curl(
    pki: E2ePki,
    port: int,
    host: str,
    client: Client | None,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[Run, int | None, bytes]:
    """curl https://host:port/path pinned to 127.0.0.1: (run, HTTP status or None, body)."""
    argv = [
        tool("curl"), "--silent", "--show-error", "--max-time", str(TIMEOUT),
        "--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(server_ca_file(pki)),
        "--write-out", "\n%{http_code}",
    ]  # fmt: skip
    if client is not None:
        argv += ["--cert", str(client.cert), "--key", str(client.key)]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    run = await run_tool(*argv, *extra, f"https://{host}:{port}{path}")
    body, _, code = run.stdout.rpartition("\n")
    status = int(code) if code.isdigit() and code != "000" else None
    return run, status, body.encode()


async def curl_keepalive(
    pki: E2ePki,
    port: int,
    host: str,
    client: Client | None,
    requests: Sequence[tuple[str, str]],
    *,
    http2: bool = False,
) -> list[tuple[int | None, int]]:
    """One curl run making `requests` ((method, path), in order) over the connection it keeps
    alive, in HTTP/1.1 or (`http2`) as streams of one HTTP/2 connection: (HTTP status or None,
    new connections curl opened for it) per request."""
    argv = [tool("curl")]
    for i, (method, path) in enumerate(requests):
        if i:
            argv.append("--next")
        argv += [
            "--silent", "--show-error", "--max-time", str(TIMEOUT), "--output", os.devnull,
            "--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(server_ca_file(pki)),
            "--request", method, "--write-out", "%{http_code} %{num_connects}\n",
            "--http2" if http2 else "--http1.1",
        ]  # fmt: skip
        if client is not None:
            argv += ["--cert", str(client.cert), "--key", str(client.key)]
        argv.append(f"https://{host}:{port}{path}")
    run = await run_tool(*argv)
    out: list[tuple[int | None, int]] = []
    for line in run.stdout.splitlines():
        code, _, connects = line.partition(" ")
        out.append((int(code) if code != "000" else None, int(connects)))
    assert len(out) == len(requests), run.stderr
    return out


def _s_client_argv(pki: E2ePki, port: int, sni: str | None, extra: tuple[str, ...]) -> list[str]:
    """`openssl s_client` to 127.0.0.1:port trusting the server CA; `sni=None` sends no name."""
    name = ["-servername", sni] if sni is not None else ["-noservername"]
    return [
        tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", *name,
        "-CAfile", str(server_ca_file(pki)), *extra,
    ]  # fmt: skip


async def s_client(pki: E2ePki, port: int, sni: str | None, *extra: str) -> Run:
    """`openssl s_client` handshake, then EOF on stdin: its report of what the server sent.
    `sni=None` sends no server name at all."""
    return await run_tool(*_s_client_argv(pki, port, sni, extra))


def handshake_done(run: Run) -> bool:
    """Did s_client complete a handshake (and exit cleanly at stdin's EOF)?"""
    return run.code == 0 and "New, TLSv1." in run.stdout


async def s_client_interactive(
    pki: E2ePki, port: int, sni: str, commands: bytes, *extra: str
) -> Run:
    """s_client with `commands` on stdin, which then stays open (s_client keeps the connection)."""
    argv = _s_client_argv(pki, port, sni, extra)
    return await run_tool(*argv, stdin=commands, keep_stdin_open=True)
