"""`anchors_from_view`: a set whose version, CRLs and blocked certificates did not change keeps
the very anchors in force (nothing re-read), and any one change makes new ones."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.dataplane.trust_inputs import anchors_from_view
from edgeproxy.domain.certificates import certificate_record
from edgeproxy.domain.model import BlockedCertificate, Version
from edgeproxy.tls.trust import TrustAnchors, TrustState
from support.pki import Issued, Pki, build_crl

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PKI = Pki(NOW)
PARTNERS, OTHERS = PKI.ca("Partners CA"), PKI.ca("Others CA")
BOUND = ("others", "partners")


def _version(number: int, *cas: Issued) -> Version:
    return Version(
        ca_set_id=1,
        version=number,
        description=None,
        allow_insecure_sha1=False,
        require_root_certificate=False,
        certificates=tuple(certificate_record(ca.cert, None) for ca in cas),
        created_by="test",
        created_at=NOW,
    )


def _crl(number: int) -> bytes:
    crl = build_crl(PARTNERS, this_update=NOW, next_update=NOW + timedelta(days=1), number=number)
    return crl.public_bytes(Encoding.DER)


# Made once: an ECDSA signature differs at each signing, and so would the CRL.
CRL_1, CRL_2 = _crl(1), _crl(2)


def _block(fingerprint: str) -> BlockedCertificate:
    return BlockedCertificate(
        id=1,
        ca_set_id=1,
        fingerprint=fingerprint,
        issuer=None,
        serial_number=None,
        reason="key lost",
        expires_at=None,
        created_by="test",
        created_at=NOW,
    )


@dataclass(frozen=True)
class View:
    """What a store view says of the bound sets (versions, CRLs, blocked certificates)."""

    versions: dict[str, Version | None] = field(
        default_factory=lambda: {"partners": _version(1, PARTNERS), "others": _version(3, OTHERS)}
    )
    crls: dict[str, tuple[bytes, ...]] = field(default_factory=lambda: {"partners": (CRL_1,)})
    blocked: dict[str, tuple[BlockedCertificate, ...]] = field(
        default_factory=lambda: {"partners": (_block("aa" * 32),)}
    )

    def anchors(self, previous: TrustState | None) -> dict[str, TrustAnchors | None]:
        return anchors_from_view(
            BOUND, previous, versions=self.versions, crls=self.crls, blocked=self.blocked
        )


VIEW = View()


def _in_force() -> TrustState:
    return TrustState(active=VIEW.anchors(None))


def test_an_unchanged_view_keeps_the_very_same_anchors() -> None:
    previous = _in_force()
    again = View().anchors(previous)  # equal inputs, new objects: compared by value
    assert again["partners"] is previous.active["partners"]
    assert again["others"] is previous.active["others"]


def test_without_a_state_in_force_the_anchors_are_read_from_the_view() -> None:
    first, second = VIEW.anchors(None), VIEW.anchors(None)
    assert first["partners"] is not second["partners"]
    assert first["partners"] == second["partners"]


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(replace(VIEW, crls={"partners": (CRL_2,)}), id="a newer CRL"),
        pytest.param(replace(VIEW, crls={}), id="the CRL withdrawn"),
        pytest.param(replace(VIEW, blocked={"partners": (_block("bb" * 32),)}), id="a new block"),
        pytest.param(replace(VIEW, blocked={}), id="the block lifted"),
        pytest.param(
            replace(VIEW, versions={**VIEW.versions, "partners": _version(2, PARTNERS)}),
            id="a new version of the same certificates",
        ),
        pytest.param(
            replace(VIEW, versions={**VIEW.versions, "partners": _version(1, OTHERS)}),
            id="the set made again: version 1, other certificates",
        ),
    ],
)
def test_a_change_to_one_set_makes_its_anchors_anew_and_keeps_the_others(view: View) -> None:
    previous = _in_force()
    before, after = previous.active["partners"], view.anchors(previous)
    changed = after["partners"]
    assert before is not None
    assert changed is not None
    assert changed is not before
    assert changed.key != before.key
    version = view.versions["partners"]
    assert version is not None
    expected = TrustAnchors.from_version(
        "partners",
        version,
        view.crls.get("partners", ()),
        view.blocked.get("partners", ()),
    )
    assert changed == expected
    assert after["others"] is previous.active["others"]


def test_a_set_with_no_active_version_has_no_anchors() -> None:
    previous = _in_force()
    after = replace(VIEW, versions={**VIEW.versions, "partners": None}).anchors(previous)
    assert after["partners"] is None
    assert after["others"] is previous.active["others"]
