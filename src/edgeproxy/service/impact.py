"""Safe trust changes (docs/management.md "Safe trust changes"): what a version would do to the
clients the fleet saw, how two versions differ, and which version a rollback goes back to.

The verdicts come from the data plane's own verifier (tls/recheck.py `VersionJudge`), handed in by
the node's wiring as a `JudgeFactory` (this package never imports tls), and run in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from edgeproxy.domain.clients import (
    Affected,
    Impact,
    ObservedClient,
    VersionDiff,
    aggregate,
    diff_versions,
)
from edgeproxy.domain.crls import crl_der, effective_crls
from edgeproxy.domain.errors import Conflict
from edgeproxy.domain.model import (
    ActivationStatus,
    ActivationType,
    BlockedCertificate,
    Network,
    Version,
)
from edgeproxy.service.shared import live_ca_set, version_or_404
from edgeproxy.store import Store

# (chain as presented, CA set name, version or None, the set's CRLs in effect, its blocked
# certificates) -> None when the edge would accept the chain under that version, else the reason
# it would give.
ChainVerdict = Callable[
    [Sequence[bytes], str, Version | None, tuple[bytes, ...], tuple[BlockedCertificate, ...]],
    str | None,
]
# A fresh verdict function per computation (it may cache what it built for one version).
JudgeFactory = Callable[[], ChainVerdict]


def _judge_all(
    verdict: ChainVerdict,
    clients: list[ObservedClient],
    ca_set: str,
    active: Version | None,
    target: Version,
    crls: tuple[bytes, ...],
    blocked: tuple[BlockedCertificate, ...],
) -> tuple[list[Affected], list[Affected]]:
    refused: list[Affected] = []
    accepted: list[Affected] = []
    for client in clients:
        now = verdict(client.chain_der, ca_set, active, crls, blocked)
        then = verdict(client.chain_der, ca_set, target, crls, blocked)
        if now is None and then is not None:
            refused.append(Affected(client, then))
        elif now is not None and then is None:
            accepted.append(Affected(client, now))
    return refused, accepted


class SafeChanges:
    def __init__(self, store: Store, judge: JudgeFactory | None) -> None:
        self._store = store
        self._judge = judge

    async def impact(self, set_id: int, number: int, network: Network) -> Impact:
        """The clients seen on the network's bindings of the set that version `number` would
        refuse although the version in force accepts them, and those it would newly accept."""
        async with self._store.transaction(write=False) as tx:
            ca_set = await live_ca_set(tx, set_id)
            target = await version_or_404(tx, set_id, number)
            active_number = ca_set.active_version(network)
            active = None
            if active_number is not None:
                active = await version_or_404(tx, set_id, active_number)
            crls = tuple(crl_der(c) for c in effective_crls(await tx.list_crls(set_id)))
            blocked = tuple(await tx.list_blocks(set_id))
            records = await tx.list_client_records(network, ca_set.name)
        clients = aggregate(records)
        refused: list[Affected] = []
        accepted: list[Affected] = []
        if clients and active_number != number:
            if self._judge is None:
                raise Conflict("impact-unavailable", "this node cannot verify client chains")
            refused, accepted = await asyncio.to_thread(
                _judge_all, self._judge(), clients, ca_set.name, active, target, crls, blocked
            )
        return Impact(
            ca_set_id=set_id,
            version=number,
            network=network,
            active_version=active_number,
            clients_observed=len(clients),
            would_be_refused=tuple(refused),
            newly_accepted=tuple(accepted),
        )

    async def diff(self, set_id: int, before: int, after: int) -> VersionDiff:
        async with self._store.transaction(write=False) as tx:
            await live_ca_set(tx, set_id)
            old = await version_or_404(tx, set_id, before)
            new = await version_or_404(tx, set_id, after)
        return diff_versions(set_id, old, new)

    async def rollback_target(self, set_id: int, network: Network) -> int:
        """The version that was active on the network before the one active now."""
        async with self._store.transaction(write=False) as tx:
            ca_set = await live_ca_set(tx, set_id)
            activations = await tx.list_activations(set_id)
        current = ca_set.active_version(network)
        if current is None:
            raise Conflict("nothing-to-roll-back", f"no version is active on {network}")
        for a in activations:  # newest first
            if a.network is not network or a.status is ActivationStatus.FAILED:
                continue
            if a.type is ActivationType.ACTIVATE and a.version == current:
                if a.previous_version is None:
                    break
                return a.previous_version
            break
        raise Conflict(
            "nothing-to-roll-back",
            f"no version was active on {network} before version {current}",
        )
