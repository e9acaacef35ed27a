"""CRL use cases (docs/management.md "CRLs"): upload, list and delete a CA set's revocation lists.

CRLs are not versioned: each applies to every version of its set while it is the newest of its
issuer. Every change bumps the store revision, so edge nodes reload them like an activation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from edgeproxy.domain import rules
from edgeproxy.domain.crls import (
    CrlState,
    crl_record,
    crl_states,
    parse_crl,
    set_warnings,
)
from edgeproxy.domain.errors import Conflict, FieldError, NotFound
from edgeproxy.domain.model import ActivityType, CaSet, CaSetStatus, Crl
from edgeproxy.service.shared import Actor, Clock, ca_set_or_404, editable_ca_set
from edgeproxy.store import Store


class Crls:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def add_crl(
        self, actor: Actor, set_id: int, crl_pem: str, description: str | None
    ) -> CrlState:
        rules.check_description(description)
        now = self._clock()
        parsed = parse_crl(crl_pem, now=now)  # the costly parse happens outside the transaction
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            cas = [c for v in await tx.list_versions(set_id) for c in v.certificates]
            record = crl_record(parsed, cas, description)
            duplicate = await tx.find_crl(set_id, record.fingerprint)
            if duplicate is not None:
                raise Conflict(
                    "duplicate-crl",
                    f"this CRL was uploaded to the set already (CRL {duplicate.id})",
                    extra={"crlId": duplicate.id},
                )
            await tx.bump_revision()
            crl = await tx.insert_crl(set_id, record, actor.name, now)
            await tx.record_activity(set_id, ActivityType.ADD_CRL, actor.name, now)
            return _state_of(crl, await tx.list_crls(set_id), now)

    async def list_crls(self, set_id: int) -> list[CrlState]:
        """Every CRL of the set (deleted sets too: history), each marked effective or not."""
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            crls = await tx.list_crls(set_id)
        return crl_states(crls, self._clock())

    async def delete_crl(self, actor: Actor, set_id: int, crl_id: int) -> None:
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            if await tx.get_crl(set_id, crl_id) is None:
                raise NotFound("crl-not-found", f"CA set {set_id} has no CRL {crl_id}")
            await tx.bump_revision()
            await tx.delete_crl(set_id, crl_id)
            await tx.record_activity(set_id, ActivityType.DELETE_CRL, actor.name, now)

    async def ca_set_warnings(self, sets: Iterable[CaSet]) -> dict[int, tuple[FieldError, ...]]:
        """Per set id: the CRLs in effect that are past their nextUpdate (shown on the set).

        A deleted set's CRLs reach no edge node: nothing to warn about.
        """
        now = self._clock()
        async with self._store.transaction(write=False) as tx:
            return {
                s.id: ()
                if s.status is CaSetStatus.DELETED
                else set_warnings(await tx.list_crls(s.id), now)
                for s in sets
            }


def _state_of(crl: Crl, crls: list[Crl], now: datetime) -> CrlState:
    return next(s for s in crl_states(crls, now) if s.crl.id == crl.id)
