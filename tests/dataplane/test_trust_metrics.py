"""edgeproxy_trust_apply_latency_seconds times activations only: not a SIGHUP that binds a set
activated long ago, not a CRL change, not the first state of a process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeproxy.dataplane.trust_metrics import activation_latency
from edgeproxy.tls.trust import TrustAnchors, TrustState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(seconds=146)
JUST_NOW = NOW - timedelta(seconds=0.2)


def state(**versions: int | None) -> TrustState:
    active = {
        name: None if v is None else TrustAnchors(name, v, (b"der",))
        for name, v in versions.items()
    }
    return TrustState(active=active)


def test_an_activation_newer_than_the_last_view_is_timed() -> None:
    latency = activation_latency(
        state(partners=2), state(partners=1), {"partners": JUST_NOW}, {"partners": LONG_AGO}, NOW
    )
    assert latency == 0.2


def test_a_first_activation_of_a_bound_set_is_timed() -> None:
    latency = activation_latency(
        state(partners=1), state(partners=None), {"partners": JUST_NOW}, {}, NOW
    )
    assert latency == 0.2


def test_a_set_newly_bound_by_sighup_is_not_timed() -> None:
    # The set was activated 146 s ago; the last view showed that activation already.
    seen = {"partners": LONG_AGO, "others": LONG_AGO}
    changed = dict(seen)
    assert activation_latency(
        state(partners=1, others=3), state(partners=1), changed, seen, NOW
    ) is (None)


def test_the_first_state_and_a_crl_change_are_not_timed() -> None:
    assert activation_latency(state(partners=1), None, {"partners": JUST_NOW}, {}, NOW) is None
    same = state(partners=1)
    assert activation_latency(same, state(partners=1), {"partners": JUST_NOW}, {}, NOW) is None
