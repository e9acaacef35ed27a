"""The bench's PKI, made at run time with trustme and never kept: one server certificate for
`localhost` per key type, one for `managed.localhost` (the store-managed edge certificate of the
binding figure), one client CA with one client certificate, and an unrelated CA that a second
CA-set version adds (so a new version still trusts the client); a third version holds the client
CA and 299 unrelated CAs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

BIG_VERSION = 300  # certificates in the CA set's version 3 (the most a version may hold)
SERVER_KEYS = {"ecdsa-p256": trustme.KeyType.ECDSA, "rsa-2048": trustme.KeyType.RSA}
MANAGED_HOST = "managed.localhost"  # the store-managed edge certificate's host name


@dataclass(frozen=True)
class ServerFiles:
    chain: Path  # leaf first, then its CA
    key: Path


@dataclass(frozen=True)
class Pki:
    servers: dict[str, ServerFiles]  # by SERVER_KEYS name
    managed: ServerFiles  # for MANAGED_HOST, sent through the admin API (never in a config file)
    server_ca: Path  # what clients verify the proxies against
    client_ca: Path  # the CA set's first version; nginx's ssl_client_certificate
    client_ca_v2: Path  # client CA + an unrelated CA: a different version that still trusts
    client_ca_300: Path  # client CA + 299 unrelated CAs: the largest version a set may hold
    client_cert: Path  # client certificate alone
    client_key: Path
    client_combined: Path  # certificate + key in one PEM, for `ab -E`


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    servers = {}
    server_ca_pems = []
    for name, key_type in SERVER_KEYS.items():
        ca = trustme.CA(organization_name=f"bench server CA {name}", key_type=key_type)
        leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=key_type)
        chain = directory / f"server-{name}-chain.pem"
        key = directory / f"server-{name}.key"
        chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        servers[name] = ServerFiles(chain, key)
        server_ca_pems.append(ca.cert_pem.bytes())
    server_ca = directory / "server-ca.pem"
    server_ca.write_bytes(b"".join(server_ca_pems))
    # No client connects to it: the binding figure reads the node's /status.
    managed_ca = trustme.CA(organization_name="bench managed CA", key_type=trustme.KeyType.ECDSA)
    leaf = managed_ca.issue_cert(MANAGED_HOST, key_type=trustme.KeyType.ECDSA)
    managed = ServerFiles(directory / "managed-chain.pem", directory / "managed.key")
    managed.chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(managed.key))

    client_ca = trustme.CA(organization_name="bench client CA")
    other_ca = trustme.CA(organization_name="bench other CA")
    client = client_ca.issue_cert("client@bench.invalid", common_name="bench client")
    extra = [trustme.CA(organization_name=f"bench extra CA {i}") for i in range(1, BIG_VERSION)]
    files = {
        "client-ca.pem": client_ca.cert_pem.bytes(),
        "client-ca-v2.pem": client_ca.cert_pem.bytes() + other_ca.cert_pem.bytes(),
        "client-ca-300.pem": b"".join(c.cert_pem.bytes() for c in [client_ca, *extra]),
        "client.pem": client.cert_chain_pems[0].bytes(),
        "client.key": client.private_key_pem.bytes(),
        "client-combined.pem": client.cert_chain_pems[0].bytes() + client.private_key_pem.bytes(),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(
        servers=servers,
        managed=managed,
        server_ca=server_ca,
        client_ca=directory / "client-ca.pem",
        client_ca_v2=directory / "client-ca-v2.pem",
        client_ca_300=directory / "client-ca-300.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_combined=directory / "client-combined.pem",
    )
