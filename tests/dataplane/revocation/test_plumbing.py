"""CRLs from the store's view to the handshake: digest, contexts, snapshot, trust sync, status."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.config.model import EdgeConfig, HostPort, NodeConfig, OcspConfig
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.snapshot import read_snapshot, write_snapshot
from edgeproxy.domain.certificates import CertificateInput
from edgeproxy.domain.model import ActivationStatus, Network
from edgeproxy.revocation.crl import CrlWatch
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.shared import Actor
from edgeproxy.service.truststore import Truststore
from edgeproxy.service.versions import VersionDraft
from edgeproxy.store import Store
from edgeproxy.tls.contexts import build_state, session_id_context
from edgeproxy.tls.trust import TrustAnchors, context_key
from support.revocation_pki import HOUR, Pki, now

from .conftest import StartResponder
from .harness import Origin, Refused, edge_config, get_once
from .responders import BuiltBackend


def anchors(pki: Pki, crls: tuple[bytes, ...] = ()) -> TrustAnchors:
    return TrustAnchors("partners", 1, (pki.ca.der,), False, crls)


def test_crls_are_part_of_the_key_and_the_context(pki: Pki) -> None:
    edge = edge_config(pki, Origin(), OcspConfig(), "require")
    crl_a, crl_b = pki.ca.crl(()), pki.ca.crl((1,))
    plain, with_a, with_b = anchors(pki), anchors(pki, (crl_a,)), anchors(pki, (crl_b,))
    assert len({context_key(edge, a) for a in (plain, with_a, with_b)}) == 3
    assert len({session_id_context(edge, a) for a in (plain, with_a, with_b)}) == 3

    first = build_state([edge], {"partners": with_a})
    same = build_state([edge], {"partners": anchors(pki, (crl_a,))}, previous=first)
    assert same.edges["api"].context is first.edges["api"].context
    other = build_state([edge], {"partners": with_b}, previous=first)
    assert other.edges["api"].context is not first.edges["api"].context


def test_snapshot_keeps_crls_and_reads_old_snapshots(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    crl = pki.ca.crl((7,))
    active = {"partners": TrustAnchors.from_der("partners", 1, (pki.ca.der,), False, (crl,))}
    write_snapshot(path, Network.STAGING, 3, active)
    loaded = read_snapshot(path, Network.STAGING)
    assert loaded is not None
    assert loaded.active["partners"] is not None
    assert loaded.active["partners"].crls_der == (crl,)

    document = json.loads(path.read_text())
    del document["caSets"]["partners"]["crlsDer"]  # as written before CRLs existed
    del document["edgeCertificates"]  # and before store-managed edge certificates
    document["format"] = 1
    path.write_text(json.dumps(document))
    old = read_snapshot(path, Network.STAGING)
    assert old is not None
    assert old.active["partners"] is not None
    assert old.active["partners"].crls_der == ()


def _pem(crl_der: bytes) -> str:
    return x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM).decode()


async def _seed(store: Store, pki: Pki, crls: tuple[bytes, ...] = ()) -> int:
    """The CA set `partners`: version 1 holds the client CA, active on STAGING, plus CRLs."""
    service = Truststore.build(store)
    actor = Actor("test")
    ca_set = await service.ca_sets.create_ca_set(actor, "partners", None)
    pem = pki.ca.cert.public_bytes(Encoding.PEM).decode()
    draft = VersionDraft(False, False, None, (CertificateInput(pem),))
    await service.versions.create_version(actor, ca_set.id, draft)
    await service.activations.activate(actor, ca_set.id, 1, Network.STAGING)
    for der in crls:
        await service.crls.add_crl(actor, ca_set.id, _pem(der), None)
    return ca_set.id


def _role(
    pki: Pki,
    tmp_path: Path,
    store: Store,
    origin: Origin | None = None,
    ocsp: OcspConfig | None = None,
) -> EdgeRole:
    node = NodeConfig("edge-1", Network.STAGING, ("edge",), tmp_path / "snapshot.json")
    binding = edge_config(pki, origin or Origin(), ocsp or OcspConfig(), "require")
    edge = EdgeConfig(HostPort("127.0.0.1", 0), (binding,))
    return EdgeRole(node, edge, store, FleetService(store), Metrics())


@pytest.mark.parametrize("with_crls", [True, False])
async def test_trust_sync_carries_the_stores_crls(
    pki: Pki, tmp_path: Path, store: Store, with_crls: bool
) -> None:
    crl = pki.ca.crl((5,))
    await _seed(store, pki, (crl,) if with_crls else ())
    role = _role(pki, tmp_path, store)
    await role.sync.sync()

    applied = role.sync.applied
    assert applied is not None
    active = applied.active["partners"]
    assert active is not None
    assert active.crls_der == ((crl,) if with_crls else ())
    snapshot = json.loads((tmp_path / "snapshot.json").read_text())
    assert len(snapshot["caSets"]["partners"]["crlsDer"]) == (1 if with_crls else 0)


async def test_status_and_metric_report_an_expired_crl(
    pki: Pki, tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    stale = pki.ca.crl((5,), next_update=now() - HOUR)
    set_id = await _seed(store, pki)
    # Uploaded while it was still current (the API refuses an expired CRL); it has lapsed since.
    uploader = Truststore.build(store, clock=lambda: now() - 1.5 * HOUR)
    await uploader.crls.add_crl(Actor("test"), set_id, _pem(stale), None)
    role = _role(pki, tmp_path, store)
    await role.sync.sync()

    crls = role.status().as_json()["trust"]["crls"]["partners"]
    assert len(crls) == 1
    assert crls[0]["expired"] is True
    assert crls[0]["revokedCertificates"] == 1
    assert crls[0]["issuer"] == "CN=Partner Client CA"

    with caplog.at_level(logging.WARNING, logger="edgeproxy.revocation.crl"):
        await role._check_crls()
        await role._check_crls()  # logged once, not on every check
    assert len([r for r in caplog.records if "nextUpdate" in r.getMessage()]) == 1
    gauge = role.metrics.registry.get_sample_value("edgeproxy_crl_expired", {"ca_set": "partners"})
    assert gauge == 1


def test_crl_watch_counts_only_expired(pki: Pki) -> None:
    fresh, stale = pki.ca.crl(()), pki.unrelated.crl((), next_update=now() - HOUR)
    watch = CrlWatch()
    assert watch.check({"a": (fresh,), "b": (fresh, stale), "c": ()}, now()) == {
        "a": 0,
        "b": 1,
        "c": 0,
    }


async def test_edge_role_wires_ocsp_and_crls_into_its_listener(
    pki: Pki, tmp_path: Path, store: Store, origin: Origin, responder: StartResponder
) -> None:
    """EdgeRole.start(): contexts consult its revocation service, HTTP waits on it, and its own
    ClientSession asks the responder; the store's CRLs reach the handshake."""
    r = await responder(BuiltBackend(pki.ca.cert, pki.ca.key))
    good, listed = pki.issue("good", ocsp_url=r.url), pki.issue("listed", ocsp_url=r.url)
    await _seed(store, pki, (pki.ca.crl((listed.serial,)),))
    role = _role(pki, tmp_path, store, origin, OcspConfig(enabled=True, failure_mode="hard"))
    await role.start()
    try:
        for _ in range(2):
            assert await get_once(role, pki.client_context(good)) == (200, b"ok")
        with pytest.raises(Refused):
            await get_once(role, pki.client_context(listed))
    finally:
        await role.stop()
    assert r.hits == 1  # the CRL refusal never asked; the second connection hit the cache
    sample = role.metrics.registry.get_sample_value
    assert sample("edgeproxy_ocsp_responses_total", {"status": "good"}) == 1
    assert sample("edgeproxy_ocsp_cache_hits_total") == 1


async def test_a_failed_trust_build_keeps_the_state_in_force_and_says_why(
    pki: Pki, tmp_path: Path, store: Store, origin: Origin
) -> None:
    set_id = await _seed(store, pki)
    pem = tmp_path / "edge.pem"  # the edge's own key and chain, which this test breaks
    pem.write_bytes(pki.server_pem.read_bytes())
    binding = replace(
        edge_config(pki, origin, OcspConfig(), "require"), certificate=pem, private_key=pem
    )
    node = NodeConfig("edge-1", Network.STAGING, ("edge",), tmp_path / "snapshot.json")
    fleet = FleetService(store)
    role = EdgeRole(node, EdgeConfig(HostPort("127.0.0.1", 0), (binding,)), store, fleet, Metrics())
    good = pki.issue("good")
    await role.start()
    try:
        before = role.sync.applied
        assert before is not None
        assert await get_once(role, pki.client_context(good)) == (200, b"ok")
        served = role.sync.served.get(binding)  # its origin pool, warm now

        # Version 2 trusts another CA, but its contexts cannot be built: the key file is junk.
        pem.write_bytes(b"not a key")
        service, actor = Truststore.build(store), Actor("test")
        other = pki.unrelated.cert.public_bytes(Encoding.PEM).decode()
        draft = VersionDraft(False, False, None, (CertificateInput(other),))
        await service.versions.create_version(actor, set_id, draft)
        await service.activations.activate(actor, set_id, 2, Network.STAGING)
        for _ in range(200):  # the trust sync follows the store on its own
            if role.sync.apply_errors:
                break
            await asyncio.sleep(0.05)

        after = role.sync.applied
        assert after is not None
        assert after.edges["api"] is before.edges["api"]  # the same prepared edge and context
        assert role.sync.served.get(binding) is served  # and the same pool
        assert after.active["partners"] is not None
        assert after.active["partners"].version == 1
        assert after.revision > before.revision  # caught up, so the failure is reported
        assert "trust state build failed" in role.sync.apply_errors["partners"]
        sample = role.metrics.registry.get_sample_value
        failed = sample("edgeproxy_trust_reloads_total", {"result": "failure"})
        assert failed == 1
        assert role.status().as_json()["trust"]["versions"] == {"partners": 1}
        assert await get_once(role, pki.client_context(good)) == (200, b"ok")  # v1 in force

        # The node's report fails the activation and puts the network back on version 1.
        await service.reconciler.reconcile()
        async with store.transaction(write=False) as tx:
            latest = (await tx.list_activations(set_id))[0]
            ca_set = await tx.get_ca_set(set_id)
        assert latest.status is ActivationStatus.FAILED
        assert latest.failure_reason is not None
        assert "edge-1: trust state build failed" in latest.failure_reason
        assert ca_set is not None
        assert ca_set.active_version(Network.STAGING) == 1
    finally:
        await role.stop()
