"""The HTTP half of each prepared edge: its host matcher and origin pool, built once per trust swap.

`tls/trust.py` `PreparedEdge` is what a handshake needs (the SSL context, the anchors, ALPN); it
stays free of asyncio. `ServedEdge` is its companion on the event loop: what the HTTP layer of a
connection of that edge certificate needs (`HostMatcher`, `OriginPool`, the deny/forward policy).
`TrustSync` (dataplane/trust_sync.py) updates `ServedEdges` with every state it swaps in, so both
halves change together and nothing is built per connection.

Reuse: an edge whose host names and origin did not change keeps its matcher and pool (and so its
warm origin connections); pools are keyed by origin URL and shared by the edges that name it, as
the listener always did. An `http://` origin gets HTTP/1.1 keep-alive connections (origin.py), an
`h2c://` one a few multiplexed HTTP/2 connections (h2pool.py). A pool no edge names any more
is retired: marked closed and its idle origin connections closed at once. Requests already using
it finish; their origin connections are closed instead of pooled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from edgeproxy.config.model import EdgeCertificateConfig, EdgeLimits
from edgeproxy.dataplane.http.h2pool import H2OriginPool
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.links import ServedOrigin
from edgeproxy.dataplane.http.origin import OriginPool


@dataclass(frozen=True, slots=True, eq=False)
class ServedEdge:
    """What the HTTP layer of one edge certificate's connections shares."""

    edge: EdgeCertificateConfig
    matcher: HostMatcher
    pool: ServedOrigin

    @property
    def forward(self) -> bool:
        """A client whose certificate did not verify is forwarded, flagged (not answered 403)."""
        return self.edge.mutual_authentication.forwards_failures


class ServedEdges:
    """Edge name → `ServedEdge` for the trust state in force; one per edge role (worker)."""

    def __init__(self, limits: EdgeLimits, *, max_idle_per_origin: int = 64) -> None:
        self.limits = limits
        self.max_idle_per_origin = max_idle_per_origin
        self._edges: dict[str, ServedEdge] = {}
        self._pools: dict[str, ServedOrigin] = {}
        # Retired pools whose last requests may still be running; awaited by close().
        self._retired: set[ServedOrigin] = set()

    def __len__(self) -> int:
        return len(self._edges)

    @property
    def pools(self) -> dict[str, ServedOrigin]:
        """Origin URL → the pool in use (a copy)."""
        return dict(self._pools)

    def update(self, edges: Iterable[EdgeCertificateConfig]) -> None:
        """Serve exactly `edges` from now on: reuse what did not change, retire unused pools.

        Raises (changing nothing) on an origin the pool cannot serve."""
        old_edges, old_pools = self._edges, self._pools
        new_edges: dict[str, ServedEdge] = {}
        new_pools: dict[str, ServedOrigin] = {}
        for edge in edges:
            pool = new_pools.get(edge.origin) or old_pools.get(edge.origin)
            if pool is None:
                pool = self._new_pool(edge.origin)
            new_pools[edge.origin] = pool
            known = old_edges.get(edge.name)
            if known is not None and known.edge == edge and known.pool is pool:
                new_edges[edge.name] = known
                continue
            matcher = (
                known.matcher
                if known is not None and known.edge.hostnames == edge.hostnames
                else HostMatcher(edge.hostnames)
            )
            new_edges[edge.name] = ServedEdge(edge, matcher, pool)
        self._edges, self._pools = new_edges, new_pools
        kept = {id(p) for p in new_pools.values()}
        for pool in old_pools.values():
            if id(pool) not in kept:
                self._retire(pool)
        self._retired = {p for p in self._retired if p.connecting}

    def get(self, edge: EdgeCertificateConfig) -> ServedEdge:
        """The served form of a connection's edge certificate, by name.

        A handshake that began before a swap may name an edge that has since gone away (a
        SIGHUP removed it): such a connection is served once through a retired pool (no
        keep-alive to the origin) and the connection watch retires it (connections.py)."""
        served = self._edges.get(edge.name)
        if served is not None:
            return served
        pool = self._new_pool(edge.origin)
        self._retire(pool)
        return ServedEdge(edge, HostMatcher(edge.hostnames), pool)

    async def close(self) -> None:
        """Close every pool (after the client connections are gone)."""
        pools = [*self._pools.values(), *self._retired]
        self._edges, self._pools, self._retired = {}, {}, set()
        for pool in pools:
            await pool.close()

    def _new_pool(self, origin: str) -> ServedOrigin:
        url = urlsplit(origin)
        timeout = self.limits.origin_connect_timeout
        if url.hostname and url.scheme == "http":
            return OriginPool(
                url.hostname,
                url.port or 80,
                connect_timeout=timeout,
                max_idle=self.max_idle_per_origin,
            )
        if url.hostname and url.scheme == "h2c":  # HTTP/2 with prior knowledge (h2pool.py)
            return H2OriginPool(url.hostname, url.port or 80, connect_timeout=timeout)
        raise ValueError(f"unsupported origin {origin!r}: only http:// or h2c://host:port")

    def _retire(self, pool: ServedOrigin) -> None:
        pool.retire()
        if pool.connecting:
            self._retired.add(pool)
