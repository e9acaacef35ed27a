"""An open-loop, constant-rate HTTP/1.1 keep-alive client for latency (a separate process).

    python -m bench.rate_client --port P --rate R --seconds S [--tls --cert C --key K --ca CA]

`--conns` keep-alive connections share the rate; request n is due at t0 + n/R on connection
n mod conns. A request that cannot go out on time (its connection still waits for the previous
response) goes out as soon as it can, and its latency still counts from when it was due, so a stall
in the server is charged to every request it delayed (no coordinated omission, as wrk2 does). The
loop sleeps in select(2), whose timeout has microseconds (epoll's has milliseconds, which would add
up to 1 ms to every sample), and does not spin: it shares its CPU with the origin. Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import ssl
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _connect(args: argparse.Namespace) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.ca)
        ctx.load_cert_chain(args.cert, args.key)
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    sock.setblocking(False)
    return sock


def _complete(buf: bytes) -> int:
    """Length of the first complete response in `buf`, or 0."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    start = buf.lower().find(b"content-length:", 0, end)
    if start < 0:
        raise ValueError("response without Content-Length")
    length = int(buf[start + 15 : buf.find(b"\r\n", start)])
    total = end + 4 + length
    return total if len(buf) >= total else 0


def _send(sock: socket.socket) -> None:
    view = memoryview(REQUEST)
    while view:
        try:
            view = view[sock.send(view) :]
        except (ssl.SSLWantWriteError, BlockingIOError):
            continue


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def run(args: argparse.Namespace) -> dict[str, object]:
    socks = [_connect(args) for _ in range(args.conns)]
    sel = selectors.SelectSelector()  # microsecond timeouts; 16 descriptors
    due_at: dict[int, float] = {}  # connection index → when its in-flight request was due
    sent_at: dict[int, float] = {}
    bufs = [b""] * len(socks)
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    period = 1.0 / args.rate
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + args.warmup
    end = measure_from + args.seconds
    n = 0  # next request number
    corrected: list[float] = []
    service: list[float] = []
    errors = 0
    dead: set[int] = set()
    late: list[float] = []
    while True:
        now = time.perf_counter()
        next_due = t0 + n * period
        if next_due >= end and not due_at:
            break
        if now > end + 5:  # bounded: give up on responses that never come
            errors += len(due_at)
            break
        conn = n % len(socks)
        if conn in dead and next_due < end:
            n, errors = n + 1, errors + 1  # a request its broken connection cannot carry
            continue
        if next_due < end and now >= next_due and conn not in due_at:
            _send(socks[conn])
            due_at[conn], sent_at[conn] = next_due, now
            if next_due >= measure_from:
                late.append(now - next_due)
            n += 1
            continue
        wait = next_due - now if next_due < end and conn not in due_at else 0.01
        for key, _ in sel.select(timeout=max(0.0, wait)):
            i = key.data
            try:
                while True:
                    data = socks[i].recv(65536)
                    if not data:
                        raise ConnectionError("closed")
                    bufs[i] += data
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (OSError, ValueError):
                errors += 1
                sel.unregister(socks[i])
                due_at.pop(i, None)
                dead.add(i)
                continue
            size = _complete(bufs[i])
            if size and i in due_at:
                done = time.perf_counter()
                ok = bufs[i].startswith(b"HTTP/1.1 200 ")
                bufs[i] = bufs[i][size:]
                due = due_at.pop(i)
                if not ok:
                    errors += 1
                elif due >= measure_from:
                    corrected.append(done - due)
                    service.append(done - sent_at[i])
    for s in socks:
        s.close()
    corrected.sort()
    service.sort()
    late.sort()
    return {
        "offered_rps": args.rate,
        "achieved_rps": len(corrected) / args.seconds,
        "requests": len(corrected),
        "errors": errors,
        "p50_ms": _pct(corrected, 50),
        "p90_ms": _pct(corrected, 90),
        "p99_ms": _pct(corrected, 99),
        "max_ms": corrected[-1] * 1000 if corrected else float("nan"),
        "service_p50_ms": _pct(service, 50),
        "service_p99_ms": _pct(service, 99),
        "send_late_p99_ms": _pct(late, 99),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    print(json.dumps(run(p.parse_args())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
