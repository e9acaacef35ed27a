"""What an applied trust state tells the metrics besides itself: how long its activation took."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from edgeproxy.tls.trust import TrustAnchors, TrustState


def _version(anchors: TrustAnchors | None) -> int | None:
    return anchors.version if anchors is not None else None


def activation_latency(
    state: TrustState,
    previous: TrustState | None,
    changed_at: Mapping[str, datetime],
    seen: Mapping[str, datetime],
    now: datetime,
) -> float | None:
    """Seconds from the activation `state` applies to `now`, for edgeproxy_trust_apply_latency_
    seconds; None when it applies none.

    Timed: a set this node already enforced whose version changed by an activation (its creation
    time in `changed_at`) that the last store view applied did not show yet (`seen`). Not timed:
    a CRL-only change (versions are compared, not the CRLs that ride along), a set newly bound by
    a SIGHUP, an activation already old when this process first read it (start), a SIGHUP
    rebuild (no `changed_at`). Several sets changed at once: the slowest.
    """
    if previous is None:
        return None
    latencies = [
        (now - changed_at[name]).total_seconds()
        for name, current in state.active.items()
        if name in previous.active
        and _version(previous.active[name]) != _version(current)
        and name in changed_at
        and changed_at[name] != seen.get(name)
    ]
    return max(latencies) if latencies else None
