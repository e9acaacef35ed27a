"""mTLS connections from a separate process: held idle, or opened and closed as a handshake load.

    python -m bench.tls_client --port P --count N --cert C --key K --ca CA [--churn]
        [--for-seconds S] [--timings]

Non-blocking sockets on one selector, at most `--parallel` connections in setup at a time; each
does a full handshake (no resumption) and one proxied request. By default the connections are then
held: it prints one JSON line and waits for commands on stdin, `check` (how many are still open: a
non-blocking read that wants more data means the server kept it) and `close` (or EOF). With
`--churn` each connection is closed after its response and the next one started, until `count`
handshakes were attempted; unlike `ab -n`, it never abandons a handshake it started, so every
failure the server counts is one the client saw too. Every phase has a deadline.
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import selectors
import socket
import ssl
import sys
import time
from collections import Counter

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


class Conn:
    __slots__ = ("buf", "deadline", "sent", "sock", "started", "state", "tls")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.started = time.monotonic()  # CLOCK_MONOTONIC: comparable with the bench's own
        self.sock = sock
        self.tls: ssl.SSLSocket | None = None
        self.state = "connect"
        self.buf = b""
        self.sent = False
        self.deadline = deadline


def _response_done(buf: bytes) -> bool:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def _step(conn: Conn, ctx: ssl.SSLContext, request: bytes | None) -> int:
    """Advance one connection; returns the selector events it waits for (0: finished)."""
    if conn.state == "connect":
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, errno.errorcode.get(err, "connect"))
        conn.tls = ctx.wrap_socket(
            conn.sock, server_hostname="localhost", do_handshake_on_connect=False
        )
        conn.state = "handshake"
    assert conn.tls is not None
    try:
        if conn.state == "handshake":
            conn.tls.do_handshake()
            conn.state = "request" if request else "idle"
        if conn.state == "request":
            if not conn.sent:
                conn.tls.sendall(request or b"")
                conn.sent = True
            while not _response_done(conn.buf):
                data = conn.tls.recv(4096)
                if not data:
                    raise ConnectionError("closed before the response")
                conn.buf += data
            if not conn.buf.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(conn.buf.split(b"\r\n", 1)[0].decode(errors="replace"))
            conn.state = "idle"
            conn.buf = b""
    except ssl.SSLWantReadError:
        return selectors.EVENT_READ
    except ssl.SSLWantWriteError:
        return selectors.EVENT_WRITE
    return 0


def open_all(
    args: argparse.Namespace,
) -> tuple[list[Conn], Counter[str], float, list[tuple[float, float]]]:
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    end = started + args.deadline
    todo, active, done = args.count, 0, []
    errors: Counter[str] = Counter()
    request = (CLOSE if args.churn else REQUEST) if args.request else None
    timings: list[tuple[float, float]] = []  # (started, seconds to the response), --timings
    stop_starting = started + args.for_seconds if args.for_seconds else None

    def fail(conn: Conn, error: BaseException) -> None:
        errors[type(error).__name__ + ": " + str(error)[:80]] += 1
        sel.unregister(conn.sock)
        (conn.tls or conn.sock).close()

    while (todo or active) and time.monotonic() < end:
        if stop_starting is not None and time.monotonic() >= stop_starting:
            todo = 0
        while todo and active < args.parallel:
            sock = socket.socket()
            sock.setblocking(False)
            rc = sock.connect_ex(("127.0.0.1", args.port))
            conn = Conn(sock, time.monotonic() + args.conn_timeout)
            todo -= 1
            if rc not in (0, errno.EINPROGRESS):
                errors[f"connect: {errno.errorcode.get(rc, rc)}"] += 1
                sock.close()
                continue
            sel.register(sock, selectors.EVENT_WRITE, conn)
            active += 1
        now = time.monotonic()
        for key, _ in sel.select(timeout=0.1):
            conn = key.data
            try:
                wants = _step(conn, ctx, request)
            except (OSError, ValueError) as error:
                fail(conn, error)
                active -= 1
                continue
            if wants:
                sel.modify(conn.sock, wants, conn)
            else:
                sel.unregister(conn.sock)
                active -= 1
                done.append(conn)
                if args.timings:
                    timings.append((conn.started, time.monotonic() - conn.started))
                if args.churn:
                    conn.tls.close()
                    conn.tls = None
        for key in list(sel.get_map().values()):
            if key.data.deadline < now:
                fail(key.data, TimeoutError("setup deadline"))
                active -= 1
    for key in list(sel.get_map().values()):
        fail(key.data, TimeoutError("run deadline"))
    if todo:
        errors["not attempted (run deadline)"] += todo
    return done, errors, time.monotonic() - started, timings


def still_open(conns: list[Conn]) -> tuple[int, Counter[str]]:
    alive, gone = 0, Counter[str]()
    for conn in conns:
        assert conn.tls is not None
        conn.tls.setblocking(False)
        try:
            data = conn.tls.recv(4096)  # TLS 1.3 tickets are consumed here; any data is news
            gone["closed by server" if not data else "unexpected data"] += 1
        except ssl.SSLWantReadError:
            alive += 1
        except (OSError, ValueError) as error:
            gone[type(error).__name__] += 1
    return alive, gone


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--parallel", type=int, default=16)
    p.add_argument("--deadline", type=float, default=60.0)
    p.add_argument("--conn-timeout", type=float, default=20.0)
    p.add_argument("--no-request", dest="request", action="store_false")
    p.add_argument("--churn", action="store_true", help="close after each response; no holding")
    p.add_argument(
        "--for-seconds", type=float, default=0.0, help="with --churn: stop starting after this"
    )
    p.add_argument(
        "--timings", action="store_true", help="report (start, seconds) of each connection"
    )
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    conns, errors, seconds, timings = open_all(args)
    report = {"open": len(conns), "errors": dict(errors), "seconds": seconds}
    if args.timings:
        report["timings"] = timings
    print(json.dumps(report), flush=True)
    if args.churn:
        return 0
    for line in sys.stdin:
        if line.strip() == "check":
            alive, gone = still_open(conns)
            print(json.dumps({"alive": alive, "gone": dict(gone)}), flush=True)
        else:
            break
    for conn in conns:
        if conn.tls is not None:
            conn.tls.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
