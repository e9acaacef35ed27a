"""Store-managed edge certificates on an edge node (docs/dataplane.md "Store-managed edge
certificates"): the store's view turned into the same `EdgeCertificateConfig` the config file
gives, so one build path serves both; and the checks made before a build.

Every edge node serves every store-managed edge certificate; its binding on the node's network
gives the mutual authentication, and one without a binding there fails closed (`unbound`, reason
`no_binding`). A key that does not open (no key-encryption key here, or another one) leaves that
one edge certificate out, reported as its own apply error: the others are still applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from edgeproxy.authz.parse import policy_from_json, policy_json
from edgeproxy.config.model import (
    EdgeCertificateConfig,
    EnforcementMode,
    FailureAction,
    IdentityHeaderFormat,
    MutualAuthConfig,
    OcspConfig,
    OcspFailureMode,
)
from edgeproxy.domain.edge_model import (
    ALPN_PROTOCOLS,
    EdgeCertificate,
    EdgeMaterial,
    MutualAuth,
    OcspSettings,
    edge_error_key,
)
from edgeproxy.domain.secrets import KeyRing, SecretError

# What an unbound edge carries as its mutual authentication: a set no name can match.
UNBOUND = MutualAuthConfig(ca_set="")


class EdgeNameConflict(ValueError):
    """An edge certificate named both in the node's file and in the store."""


def mutual_config(auth: MutualAuth) -> MutualAuthConfig:
    return MutualAuthConfig(
        ca_set=auth.ca_set,
        send_ca_list_to_client=auth.send_ca_list_to_client,
        mode=cast(EnforcementMode, auth.mode),
        on_failure=cast(FailureAction, auth.on_failure),
        identity_headers=cast(tuple[IdentityHeaderFormat, ...], auth.identity_headers),
        ocsp=OcspConfig(
            enabled=auth.ocsp.enabled,
            failure_mode=cast(OcspFailureMode, auth.ocsp.failure_mode),
            responder=auth.ocsp.responder,
            check_intermediates=auth.ocsp.check_intermediates,
        ),
        verify_depth=auth.verify_depth,
        authorization=policy_from_json(auth.authorization),
    )


def mutual_auth(config: MutualAuthConfig) -> MutualAuth:
    """The inverse of `mutual_config` (the snapshot keeps bindings in the store's terms)."""
    ocsp = config.ocsp
    return MutualAuth(
        ca_set=config.ca_set,
        mode=config.mode,
        on_failure=config.on_failure,
        send_ca_list_to_client=config.send_ca_list_to_client,
        identity_headers=tuple(config.identity_headers),
        verify_depth=config.verify_depth,
        ocsp=OcspSettings(
            ocsp.enabled, ocsp.failure_mode, ocsp.responder, ocsp.check_intermediates
        ),
        authorization=policy_json(config.authorization),
    )


def edge_config(
    name: str,
    hostnames: tuple[str, ...],
    origin: str,
    default: bool,
    material: EdgeMaterial,
    auth: MutualAuth | None,
    alpn: tuple[str, ...] = ALPN_PROTOCOLS,
) -> EdgeCertificateConfig:
    return EdgeCertificateConfig(
        name=name,
        hostnames=hostnames,
        certificate=Path(),
        private_key=Path(),
        origin=origin,
        mutual_authentication=UNBOUND if auth is None else mutual_config(auth),
        default=default,
        alpn=alpn,
        material=material,
        unbound=auth is None,
    )


def store_edges(
    edges: Sequence[EdgeCertificate], bindings: Mapping[str, MutualAuth]
) -> tuple[EdgeCertificateConfig, ...]:
    return tuple(
        edge_config(
            e.name,
            e.hostnames,
            e.origin,
            e.default,
            EdgeMaterial(e.chain_pem, e.sealed_key, e.generation),
            bindings.get(e.name),
            e.alpn,
        )
        for e in edges
    )


def check_names(
    declared: Sequence[EdgeCertificateConfig], stored: Sequence[EdgeCertificateConfig]
) -> None:
    both = sorted({c.name for c in declared} & {c.name for c in stored})
    if both:
        raise EdgeNameConflict(
            f"edge certificate(s) {', '.join(repr(n) for n in both)} are defined both in this "
            "node's [[edge.certificates]] and in the store; rename or remove one of them"
        )


def openable(
    edges: Sequence[EdgeCertificateConfig], keys: KeyRing | None
) -> tuple[list[EdgeCertificateConfig], dict[str, str]]:
    """The edges whose sealed key opens here, and why each other one does not (apply errors,
    keyed by `edge_error_key`). Cheap (AES-GCM); the plaintext is dropped at once."""
    kept: list[EdgeCertificateConfig] = []
    errors: dict[str, str] = {}
    for edge in edges:
        material = edge.material
        if material is None:
            kept.append(edge)
            continue
        try:
            if keys is None:
                raise SecretError(
                    f"edge certificate {edge.name!r}: this node has no key-encryption key to "
                    "open its private key"
                )
            keys.open(edge.name, material.sealed_key)
        except SecretError as error:
            errors[edge_error_key(edge.name)] = str(error)
            continue
        kept.append(edge)
    return kept, errors
