"""The handle `start_proxy` returns and the access-record sink of the HTTP tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edgeproxy.dataplane.http import AccessRecord, ProxyContext


@dataclass
class Proxy:
    port: int
    context: ProxyContext
    records: list[AccessRecord]


class Recorder:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    def request_done(self, record: AccessRecord) -> None:
        self.records.append(record)


StartProxy = Callable[..., Awaitable[Proxy]]
