"""A grpcio server as an h2c origin, and grpcio clients through the edge: generic handlers with
raw bytes (no generated stubs, no protoc), run in grpcio's own threads so the blocking calls never
hold the event loop the in-process node runs on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

SERVICE = "edge.Test"
WAIT = 10.0


@dataclass
class GrpcOrigin:
    """Methods: Unary (echo), Chat (bidirectional: one answer per message), Fail (a non-OK status
    with details), Hold (waits until the call is cancelled and records that)."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (method, metadata)
    remaining: list[float | None] = field(default_factory=list)  # Hold's time_remaining()
    cancelled: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _server: grpc.Server | None = None

    @property
    def url(self) -> str:
        return f"h2c://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
                "Chat": grpc.stream_stream_rpc_method_handler(self._chat),
                "Fail": grpc.unary_unary_rpc_method_handler(self._fail),
                "Hold": grpc.unary_unary_rpc_method_handler(self._hold),
            },
        )
        server = grpc.server(ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers((handler,))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)

    def _seen(self, method: str, context: grpc.ServicerContext) -> None:
        self.calls.append((method, dict(context.invocation_metadata())))

    def _unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen("Unary", context)
        return b"echo:" + request

    def _chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._seen("Chat", context)
        for message in requests:
            yield b"got:" + message

    def _fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen("Fail", context)
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the widget is not ready")
        raise AssertionError("abort raises")

    def _hold(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen("Hold", context)
        self.remaining.append(context.time_remaining())
        done = threading.Event()
        context.add_callback(done.set)  # runs when the call ends: here, when it is cancelled
        done.wait(WAIT)
        if not context.is_active():
            self.cancelled.set()
        return b"late"


def client_channel(
    port: int, authority: str, root: bytes, cert: bytes | None, key: bytes | None
) -> grpc.Channel:
    """A TLS channel to the edge on 127.0.0.1:port, naming `authority` (SNI, certificate check
    and :authority); with the client certificate when `cert` and `key` are given."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=cert
    )
    options = [
        ("grpc.ssl_target_name_override", authority),
        ("grpc.default_authority", authority),
    ]
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)
