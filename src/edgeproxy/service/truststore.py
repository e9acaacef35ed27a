"""Truststore use cases (docs/management.md): each checks the rules and runs in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from edgeproxy.domain import rules
from edgeproxy.domain.certificates import (
    CertificateInput,
    Check,
    ValidationReport,
    validate_certificates,
)
from edgeproxy.domain.errors import Conflict, NotFound, ValidationError
from edgeproxy.domain.model import (
    ActivationStatus,
    Activity,
    ActivityType,
    CaSet,
    CaSetStatus,
    Certificate,
    Network,
    Version,
)
from edgeproxy.service.activations import ActivationUseCases
from edgeproxy.service.base import (
    Actor,
    Association,
    Clock,
    UseCases,
    ca_set_or_404,
    editable_ca_set,
    live_ca_set,
    utc_now,
    version_or_404,
)
from edgeproxy.service.crls import CrlUseCases
from edgeproxy.store import Tx, VersionRecord

__all__ = ["Actor", "Association", "Clock", "TruststoreService", "UseCases", "utc_now"]


@dataclass(frozen=True)
class VersionDraft:
    """The body of a version create/update/validate request."""

    allow_insecure_sha1: bool
    require_root_certificate: bool
    description: str | None
    certificates: tuple[CertificateInput, ...]


@dataclass(frozen=True)
class DeleteStatus:
    status: ActivationStatus
    ca_set: CaSet


class TruststoreService(CrlUseCases, ActivationUseCases):
    """Every truststore use case the admin API offers."""

    # -- CA sets -------------------------------------------------------------------------------

    async def create_ca_set(self, actor: Actor, name: str, description: str | None) -> CaSet:
        rules.check_ca_set_name(name)
        rules.check_description(description)
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
            if await tx.find_live_ca_set(name) is not None:
                raise Conflict("ca-set-name-taken", f"a CA set named {name!r} already exists")
            if await tx.count_live_ca_sets() >= rules.MAX_CA_SETS:
                raise ValidationError(
                    "ca-set-limit-reached", f"at most {rules.MAX_CA_SETS} CA sets may exist"
                )
            await tx.bump_revision()
            ca_set = await tx.insert_ca_set(name, description, actor.name, now)
            await tx.record_activity(ca_set.id, ActivityType.CREATE_CA_SET, actor.name, now)
            return ca_set

    async def list_ca_sets(
        self, *, name_prefix: str | None = None, activated_on: Network | None = None
    ) -> list[CaSet]:
        async with self.store.transaction(write=False) as tx:
            sets = await tx.list_ca_sets()
        return [
            s
            for s in sets
            if (name_prefix is None or s.name.startswith(name_prefix))
            and (activated_on is None or s.active_version(activated_on) is not None)
        ]

    async def get_ca_set(self, set_id: int) -> CaSet:
        async with self.store.transaction(write=False) as tx:
            return await ca_set_or_404(tx, set_id)

    async def delete_ca_set(self, actor: Actor, set_id: int) -> DeleteStatus:
        """Start an asynchronous soft delete; the reconciler finishes it (docs/management.md
        Deletion)."""
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
            ca_set = await live_ca_set(tx, set_id)
            if ca_set.status is CaSetStatus.DELETING:
                raise Conflict("ca-set-delete-in-progress", "the CA set is already being deleted")
            active = [n for n in Network if ca_set.active_version(n) is not None]
            if active:
                raise Conflict(
                    "ca-set-is-active",
                    "the CA set has an active version on "
                    + ", ".join(n.value for n in active)
                    + "; deactivate it first",
                )
            rules.check_no_activation_in_flight(await tx.in_progress_activations(set_id))
            users = self._associations(ca_set, await tx.list_nodes(), now)
            if users:
                raise Conflict(
                    "ca-set-in-use",
                    "edge certificates still bind this CA set",
                    # The same shape as deactivate's ca-set-in-use: one problem type, one shape.
                    extra={
                        "associations": [
                            {"node": u.node, "edgeCertificate": u.edge_certificate} for u in users
                        ]
                    },
                )
            await tx.bump_revision()
            await tx.request_delete(set_id, actor.name, now)
            await tx.record_activity(set_id, ActivityType.DELETE_CA_SET, actor.name, now)
            return _delete_status(await ca_set_or_404(tx, set_id))

    async def delete_status(self, set_id: int) -> DeleteStatus:
        ca_set = await self.get_ca_set(set_id)
        if ca_set.delete_requested_at is None:
            raise NotFound("no-delete-request", "no deletion was requested for this CA set")
        return _delete_status(ca_set)

    # -- versions ------------------------------------------------------------------------------

    def validate(self, draft: VersionDraft, check: Check = Check.VALIDATE) -> ValidationReport:
        rules.check_description(draft.description)
        return validate_certificates(
            draft.certificates,
            allow_insecure_sha1=draft.allow_insecure_sha1,
            require_root_certificate=draft.require_root_certificate,
            now=self.clock(),
            check=check,
        )

    def _checked_record(self, draft: VersionDraft) -> VersionRecord:
        report = self.validate(draft, Check.CREATE)
        if not report.ok:
            raise ValidationError(
                "invalid-certificates",
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
        record = self._checked_record(draft)
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            if await tx.count_versions(set_id) >= rules.MAX_VERSIONS_PER_SET:
                raise ValidationError(
                    "version-limit-reached",
                    f"a CA set holds at most {rules.MAX_VERSIONS_PER_SET} versions",
                )
            await _refuse_duplicate(tx, set_id, record, excluding=None)
            await tx.bump_revision()
            number = await tx.next_version_number(set_id)
            version = await tx.insert_version(set_id, number, record, actor.name, now)
            await tx.record_activity(
                set_id, ActivityType.CREATE_CA_SET_VERSION, actor.name, now, version=number
            )
            return version

    async def update_version(
        self, actor: Actor, set_id: int, number: int, draft: VersionDraft
    ) -> Version:
        record = self._checked_record(draft)
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
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
        async with self.store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            rules.check_editable(await version_or_404(tx, set_id, number))
            await tx.bump_revision()
            await tx.delete_version(set_id, number)

    async def clone_version(self, actor: Actor, set_id: int, number: int) -> Version:
        """A new editable copy of any version; expired certificates are warnings here
        (docs/management.md)."""
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
            await editable_ca_set(tx, set_id)
            source = await version_or_404(tx, set_id, number)
            if await tx.count_versions(set_id) >= rules.MAX_VERSIONS_PER_SET:
                raise ValidationError(
                    "version-limit-reached",
                    f"a CA set holds at most {rules.MAX_VERSIONS_PER_SET} versions",
                )
            report = validate_certificates(
                [CertificateInput(c.certificate_pem, c.description) for c in source.certificates],
                allow_insecure_sha1=source.allow_insecure_sha1,
                require_root_certificate=source.require_root_certificate,
                now=now,
                check=Check.CLONE,
            )
            record = VersionRecord(
                description=source.description,
                allow_insecure_sha1=source.allow_insecure_sha1,
                require_root_certificate=source.require_root_certificate,
                certificates=source.certificates,
                warnings=report.warnings + report.errors,
            )
            await tx.bump_revision()
            clone_number = await tx.next_version_number(set_id)
            version = await tx.insert_version(set_id, clone_number, record, actor.name, now)
            await tx.record_activity(
                set_id, ActivityType.CLONE_CA_SET_VERSION, actor.name, now, version=clone_number
            )
            return version

    async def list_versions(self, set_id: int) -> list[Version]:
        async with self.store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_versions(set_id)

    async def get_version(self, set_id: int, number: int) -> Version:
        async with self.store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await version_or_404(tx, set_id, number)

    async def list_certificates(
        self,
        set_id: int,
        number: int,
        *,
        statuses: Sequence[str] = (),
        expiry_threshold: timedelta = timedelta(days=30),
    ) -> list[Certificate]:
        """A version's certificates, optionally only the EXPIRING and/or EXPIRED ones."""
        version = await self.get_version(set_id, number)
        if not statuses:
            return list(version.certificates)
        now = self.clock()
        wanted = set(statuses)
        return [
            c
            for c in version.certificates
            if ("EXPIRED" in wanted and c.end_date <= now)
            or ("EXPIRING" in wanted and now < c.end_date <= now + expiry_threshold)
        ]

    # -- history and fleet ---------------------------------------------------------------------

    async def list_activities(self, set_id: int) -> list[Activity]:
        async with self.store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_activities(set_id)

    async def associations(self, set_id: int) -> list[Association]:
        async with self.store.transaction(write=False) as tx:
            ca_set = await ca_set_or_404(tx, set_id)
            nodes = await tx.list_nodes()
        return self._associations(ca_set, nodes, self.clock())


def _delete_status(ca_set: CaSet) -> DeleteStatus:
    if ca_set.status is CaSetStatus.DELETED:
        return DeleteStatus(ActivationStatus.COMPLETE, ca_set)
    if ca_set.status is CaSetStatus.DELETING:
        return DeleteStatus(ActivationStatus.IN_PROGRESS, ca_set)
    return DeleteStatus(ActivationStatus.FAILED, ca_set)


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
