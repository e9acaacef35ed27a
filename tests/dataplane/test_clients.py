"""The client recorder: bounded per binding, aggregated per leaf, drained as deltas; a client
accepted under one version and refused under the next is reported lost once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeproxy.config.model import EdgeCertificateConfig, MutualAuthConfig
from edgeproxy.dataplane.clients import ClientRecorder, LostClient
from edgeproxy.domain.clients import ACCEPTED
from edgeproxy.tls.session import Reason, TlsSession, VerifyResult
from support.pki import Pki


def _edge(name: str = "api") -> EdgeCertificateConfig:
    return EdgeCertificateConfig(
        name=name,
        hostnames=("api.example.com",),
        certificate=Path("api.pem"),
        private_key=Path("api.key"),
        origin="http://127.0.0.1:1",
        mutual_authentication=MutualAuthConfig(ca_set="partners", mode="request"),
    )


def _session(
    chain: tuple[bytes, ...],
    *,
    edge: str = "api",
    version: int = 1,
    reason: Reason | None = None,
) -> TlsSession:
    return TlsSession(
        edge=_edge(edge),
        sni="api.example.com",
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        peer_chain_der=chain,
        verify_result=VerifyResult.SUCCESS if reason is None else VerifyResult.FAILED,
        verify_reason=reason,
        ca_set="partners",
        ca_set_version=version,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _chains(n: int) -> list[tuple[bytes, ...]]:
    pki = Pki()
    issuer = pki.ca("Issuing CA")
    return [(pki.client(f"client {i}", issuer).der, issuer.der) for i in range(n)]


def test_one_record_per_leaf_with_counts_as_deltas() -> None:
    clock = Clock()
    recorder = ClientRecorder(10, clock=clock)
    chain = _chains(1)[0]
    print_ = hashlib.sha256(chain[0]).hexdigest()
    for _ in range(3):
        recorder.handshake(_session(chain))
        recorder.request("api", print_)
        clock.now += 1
    recorder.request("api", "0" * 64)  # a client never seen: nothing to count
    recorder.request("other", print_)  # the same leaf on another binding: not this record

    (batch,) = recorder.drain()
    assert (batch.edge_certificate, batch.fingerprint) == ("api", print_)
    assert (batch.handshakes, batch.requests) == (3, 3)
    assert (batch.first_seen, batch.last_seen) == (1000.0, 1002.0)
    assert batch.outcome == ACCEPTED
    assert batch.seen.chain == chain  # the DER as presented, kept once
    assert recorder.drain() == []  # nothing changed since

    recorder.request("api", print_)
    (again,) = recorder.drain()
    assert (again.handshakes, again.requests, again.first_seen) == (0, 1, 1000.0)


def test_bounded_per_binding_least_recently_seen_goes_first() -> None:
    clock = Clock()
    recorder = ClientRecorder(3, clock=clock)
    chains = _chains(5)
    for chain in chains[:3]:
        recorder.handshake(_session(chain))
        clock.now += 1
    recorder.handshake(_session(chains[0]))  # seen again: now the most recent
    recorder.handshake(_session(chains[3]))  # over the bound: chains[1] goes
    recorder.handshake(_session(chains[4], edge="other"))  # another binding has its own bound
    kept = {(b.edge_certificate, b.seen.chain) for b in recorder.drain()}
    assert kept == {
        ("api", chains[0]),
        ("api", chains[2]),
        ("api", chains[3]),
        ("other", chains[4]),
    }
    assert len(recorder) == 4


def test_records_past_the_window_are_forgotten() -> None:
    clock = Clock()
    recorder = ClientRecorder(10, clock=clock)
    old, new = _chains(2)
    recorder.handshake(_session(old))
    clock.now = 2000.0
    recorder.handshake(_session(new))
    recorder.forget(1500.0)
    assert [b.seen.chain for b in recorder.drain()] == [new]


def test_a_client_accepted_then_refused_under_a_newer_version_is_lost_once() -> None:
    lost: list[LostClient] = []
    recorder = ClientRecorder(10, on_lost=lost.append)
    chain, other = _chains(2)
    print_ = hashlib.sha256(chain[0]).hexdigest()
    recorder.handshake(_session(chain, version=1))
    # A refused handshake names the certificate verification stopped at: the leaf here.
    recorder.refused("api", Reason.UNKNOWN_CA, chain[0], 2)
    recorder.refused("api", Reason.UNKNOWN_CA, chain[0], 2)  # once per client and version
    # A client never accepted here is not lost; neither is a failure that is not a verdict.
    recorder.refused("api", Reason.UNKNOWN_CA, other[0], 2)
    recorder.refused("api", Reason.TIMEOUT, chain[0], 3)
    assert lost == [LostClient("api", print_, Reason.UNKNOWN_CA, 1, 2)]
    (batch,) = [b for b in recorder.drain() if b.fingerprint == print_]
    assert (batch.handshakes, batch.outcome) == (3, "unknown_ca")


def test_a_refusal_on_the_issuer_finds_the_client_that_presented_it() -> None:
    lost: list[LostClient] = []
    recorder = ClientRecorder(10, on_lost=lost.append)
    chain = _chains(1)[0]
    recorder.handshake(_session(chain, version=4))
    recorder.refused("api", Reason.UNKNOWN_CA, chain[1], 5)
    assert [(x.fingerprint, x.version) for x in lost] == [(hashlib.sha256(chain[0]).hexdigest(), 5)]


def test_request_mode_failures_are_recorded_with_their_reason() -> None:
    lost: list[LostClient] = []
    recorder = ClientRecorder(10, on_lost=lost.append)
    chain = _chains(1)[0]
    recorder.handshake(_session(chain, version=1))
    recorder.handshake(_session(chain, version=2, reason=Reason.UNKNOWN_CA))
    assert [(x.accepted_version, x.version) for x in lost] == [(1, 2)]
    recorder.handshake(_session(chain, version=1))  # rolled back: accepted again
    (batch,) = recorder.drain()
    assert (batch.handshakes, batch.outcome) == (3, ACCEPTED)
