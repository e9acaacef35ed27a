"""Version use cases (docs/management.md): validate, create, update, clone and read the versions
of a CA set. Each checks the rules and runs in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from edgeproxy.domain import rules
from edgeproxy.domain.certificates import (
    CertificateInput,
    Check,
    ValidationReport,
    revalidate_version,
    validate_certificates,
)
from edgeproxy.domain.errors import BadRequest, ValidationError
from edgeproxy.domain.model import ActivityType, Certificate, CertificateStatus, Version
from edgeproxy.service.shared import (
    Actor,
    Clock,
    ca_set_or_404,
    editable_ca_set,
    version_or_404,
)
from edgeproxy.store import Store, Tx, VersionRecord


@dataclass(frozen=True)
class VersionDraft:
    """The body of a version create/update/validate request."""

    allow_insecure_sha1: bool
    require_root_certificate: bool
    description: str | None
    certificates: tuple[CertificateInput, ...]


class Versions:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def validate(self, draft: VersionDraft, check: Check = Check.VALIDATE) -> ValidationReport:
        rules.check_description(draft.description)
        return validate_certificates(
            draft.certificates,
            allow_insecure_sha1=draft.allow_insecure_sha1,
            require_root_certificate=draft.require_root_certificate,
            now=self._clock(),
            check=check,
        )

    def _checked_record(self, draft: VersionDraft, operation: str) -> VersionRecord:
        """`operation`: create or update, named in the error type (the reference API's)."""
        report = self.validate(draft, Check.CREATE)
        limits = [e for e in report.errors if e.type == "too-many-certificates"]
        if limits:  # a resource limit, not a certificate's fault: 422 like the other limits
            raise ValidationError(limits[0].type, limits[0].detail, tuple(limits))
        if not report.ok:
            raise BadRequest(
                f"certificate-validation-failure-{operation}",
                f"{len(report.errors)} problem(s) with the submitted certificates",
                report.errors,
            )
        return VersionRecord(
            description=draft.description,
            allow_insecure_sha1=draft.allow_insecure_sha1,
            require_root_certificate=draft.require_root_certificate,
            certificates=report.certificates,
            warnings=report.warnings,
        )

    async def create_version(self, actor: Actor, set_id: int, draft: VersionDraft) -> Version:
        record = self._checked_record(draft, "create")
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            rules.check_version_room(await tx.count_versions(set_id))
            await _refuse_duplicate(tx, set_id, record, excluding=None)
            return await _insert_version(
                tx, set_id, record, actor, now, ActivityType.CREATE_CA_SET_VERSION
            )

    async def update_version(
        self, actor: Actor, set_id: int, number: int, draft: VersionDraft
    ) -> Version:
        record = self._checked_record(draft, "update")
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            rules.check_editable(await version_or_404(tx, set_id, number))
            await _refuse_duplicate(tx, set_id, record, excluding=number)
            await tx.bump_revision()
            version = await tx.update_version(set_id, number, record, actor.name, now)
            await tx.record_activity(
                set_id, ActivityType.UPDATE_CA_SET_VERSION, actor.name, now, version=number
            )
            return version

    async def delete_version(self, actor: Actor, set_id: int, number: int) -> None:
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            rules.check_editable(await version_or_404(tx, set_id, number))
            await tx.bump_revision()
            await tx.delete_version(set_id, number)

    async def clone_version(self, actor: Actor, set_id: int, number: int) -> Version:
        """A new editable copy of any version; expired certificates are warnings here
        (docs/management.md)."""
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            source = await version_or_404(tx, set_id, number)
            rules.check_version_room(await tx.count_versions(set_id))
            report = revalidate_version(source, now=now, check=Check.CLONE)
            record = VersionRecord(
                description=source.description,
                allow_insecure_sha1=source.allow_insecure_sha1,
                require_root_certificate=source.require_root_certificate,
                certificates=source.certificates,
                warnings=report.warnings + report.errors,
            )
            return await _insert_version(
                tx, set_id, record, actor, now, ActivityType.CLONE_CA_SET_VERSION
            )

    async def list_versions(self, set_id: int) -> list[Version]:
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_versions(set_id)

    async def get_version(self, set_id: int, number: int) -> Version:
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await version_or_404(tx, set_id, number)

    async def list_certificates(
        self,
        set_id: int,
        number: int,
        *,
        statuses: Sequence[CertificateStatus] = (),
        expiry_threshold: timedelta = timedelta(days=30),
    ) -> list[Certificate]:
        """A version's certificates, optionally only the EXPIRING and/or EXPIRED ones."""
        version = await self.get_version(set_id, number)
        if not statuses:
            return list(version.certificates)
        now = self._clock()
        wanted = set(statuses)
        return [
            c
            for c in version.certificates
            if any(s.holds(c, now, expiry_threshold) for s in wanted)
        ]


async def _insert_version(
    tx: Tx, set_id: int, record: VersionRecord, actor: Actor, now: datetime, why: ActivityType
) -> Version:
    """Store `record` as the set's next version, recording who made it and how."""
    await tx.bump_revision()
    number = await tx.next_version_number(set_id)
    version = await tx.insert_version(set_id, number, record, actor.name, now)
    await tx.record_activity(set_id, why, actor.name, now, version=number)
    return version


async def _refuse_duplicate(
    tx: Tx, set_id: int, record: VersionRecord, excluding: int | None
) -> None:
    duplicate = await tx.find_version_with_fingerprints(set_id, record, excluding=excluding)
    if duplicate is not None:
        raise ValidationError(
            "duplicate-ca-set-version",
            f"version {duplicate} already holds exactly these certificates",
            extra={
                "duplicateVersion": duplicate,
                "link": f"/mtls-edge-truststore/v2/ca-sets/{set_id}/versions/{duplicate}",
            },
        )
