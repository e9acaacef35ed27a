"""Blocked certificates (docs/management.md "Blocked certificates"): cut off one client
certificate of a CA set at once, without minting a CRL.

Every change bumps the store revision, so edge nodes apply it like a CRL: new handshakes of that
certificate are refused (reason `blocked`) and its open connections are closed after their
in-flight request. Each block and unblock is an activity of the set.
"""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.blocks import MAX_BLOCKED_PER_SET, block_request, same_certificate
from edgeproxy.domain.errors import Conflict, NotFound, ValidationError
from edgeproxy.domain.model import ActivityType, BlockedCertificate
from edgeproxy.service.shared import Actor, Clock, ca_set_or_404, editable_ca_set
from edgeproxy.store import Store


class Blocks:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def block(
        self,
        actor: Actor,
        set_id: int,
        *,
        fingerprint: str | None = None,
        issuer: str | None = None,
        serial_number: str | None = None,
        reason: str,
        expires_at: datetime | None = None,
    ) -> BlockedCertificate:
        now = self._clock()
        request = block_request(
            fingerprint=fingerprint,
            issuer=issuer,
            serial_number=serial_number,
            reason=reason,
            expires_at=expires_at,
            now=now,
        )
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            blocks = await tx.list_blocks(set_id)
            duplicate = next((b for b in blocks if same_certificate(b, request)), None)
            if duplicate is not None:
                raise Conflict(
                    "duplicate-block",
                    f"this certificate is blocked already (block {duplicate.id}); unblock it "
                    "first to change the reason or expiry",
                    extra={"blockId": duplicate.id},
                )
            if len(blocks) >= MAX_BLOCKED_PER_SET:
                raise ValidationError(
                    "too-many-blocks",
                    f"a CA set blocks at most {MAX_BLOCKED_PER_SET} certificates; "
                    "a CRL or a new version scales further",
                )
            await tx.bump_revision()
            block = await tx.insert_block(set_id, request, actor.name, now)
            await tx.record_activity(set_id, ActivityType.BLOCK_CERTIFICATE, actor.name, now)
            return block

    def now(self) -> datetime:
        """The clock blocks expire by (the API marks expired ones)."""
        return self._clock()

    async def list_blocks(self, set_id: int) -> list[BlockedCertificate]:
        """Every block of the set, expired ones included (they no longer refuse anyone)."""
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_blocks(set_id)

    async def unblock(self, actor: Actor, set_id: int, block_id: int) -> None:
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            if await tx.get_block(set_id, block_id) is None:
                raise NotFound(
                    "block-not-found", f"CA set {set_id} has no blocked certificate {block_id}"
                )
            await tx.bump_revision()
            await tx.delete_block(set_id, block_id)
            await tx.record_activity(set_id, ActivityType.UNBLOCK_CERTIFICATE, actor.name, now)
