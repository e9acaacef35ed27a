"""`edgeproxy edge-certs …`, `bind`, `unbind`: against a real admin API, nodes simulated."""

from __future__ import annotations

from pathlib import Path

import trustme

from .conftest import AdminServer, Cli, Pki

FAST = ("--poll-interval", "0.05")


def _server_files(tmp_path: Path, name: str = "shop") -> tuple[str, str, str]:
    """chain file, key file, and one line of the key's PEM body."""
    leaf = trustme.CA().issue_cert(f"{name}.example.com")
    chain, key = tmp_path / f"{name}-chain.pem", tmp_path / f"{name}.key"
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    return str(chain), str(key), leaf.private_key_pem.bytes().decode().splitlines()[1]


def test_edge_certificate_lifecycle_and_a_bind_that_waits_for_the_nodes(
    cli: Cli, pki: Pki, server: AdminServer, tmp_path: Path
) -> None:
    chain, key, body = _server_files(tmp_path)
    created = cli(
        "edge-certs", "create", "shop", "--hostname", "shop.example.com",
        "--origin", "http://127.0.0.1:8080", "--cert", chain, "--key", key,
    )  # fmt: skip
    assert created.code == 0, created.err
    assert "shop.example.com" in created.out
    listed = cli("edge-certs", "list")
    assert listed.out.splitlines()[1].split()[:3] == ["shop", "store", "shop.example.com"]

    refused = cli("bind", "shop", "--network", "STAGING", "--ca-set", "partners")
    assert refused.code == 1
    assert "409 ca-set-not-active" in refused.err
    assert "'partners'" in refused.err

    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    assert cli("activate", "partners", "1", "--network", "STAGING", "--wait", *FAST).code == 0
    before = server.run(server.revision())
    for name in ("edge-a", "edge-b"):
        server.run(server.report(name))
    nodes = server.spawn(
        server.apply_after_change([(0.0, "edge-a", None), (0.3, "edge-b", None)], since=before)
    )
    bound = cli(
        "bind", "shop", "--network", "STAGING", "--ca-set", "partners", "--send-ca-list",
        "--wait", *FAST,
    )  # fmt: skip
    nodes.result(5)
    assert bound.code == 0, bound.err
    assert "waiting for edge-a, edge-b" in bound.out
    assert bound.out.splitlines()[-1].endswith("COMPLETE; applied: edge-a, edge-b")
    assert "staging:     partners" in cli("edge-certs", "show", "shop").out
    assert "default:     yes" in cli("edge-certs", "update", "shop", "--default").out
    assert "default:     no" in cli("edge-certs", "update", "shop", "--no-default").out

    new_chain, new_key, new_body = _server_files(tmp_path, "shop2")
    rotated = cli("edge-certs", "rotate", "shop", "--cert", new_chain, "--key", new_key)
    assert rotated.code == 0, rotated.err  # a leaf for another name: a warning, not an error
    assert "generation:  2" in rotated.out
    assert "hostname-not-covered" in rotated.out
    unbound = cli("unbind", "shop", "--network", "STAGING")
    assert unbound.code == 0, unbound.err
    assert "UNBIND shop" in unbound.out
    deleted = cli("edge-certs", "delete", "shop")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted edge certificate shop")
    for result in (created, listed, bound, rotated, unbound):
        assert body not in result.text
        assert new_body not in result.text


def test_a_key_in_the_chain_file_is_refused_before_anything_is_sent(
    cli: Cli, tmp_path: Path
) -> None:
    chain, key, body = _server_files(tmp_path)
    mixed = tmp_path / "mixed.pem"
    mixed.write_text(Path(chain).read_text() + Path(key).read_text())
    result = cli(
        "edge-certs", "create", "shop", "--hostname", "shop.example.com",
        "--origin", "http://127.0.0.1:8080", "--cert", str(mixed), "--key", key,
    )  # fmt: skip
    assert result.code == 2
    assert "holds a private key" in result.err
    assert "Nothing was sent" in result.err
    assert body not in result.text
    assert cli("edge-certs", "list").out.strip() == "no edge certificates"


def test_alpn_on_create_and_update(cli: Cli, tmp_path: Path) -> None:
    chain, key, _ = _server_files(tmp_path)
    created = cli(
        "edge-certs", "create", "shop", "--hostname", "shop.example.com",
        "--origin", "http://127.0.0.1:8080", "--cert", chain, "--key", key, "--alpn", "http/1.1",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert "alpn:        http/1.1\n" in created.out
    updated = cli("edge-certs", "update", "shop", "--alpn", "http/1.1, h2")
    assert updated.code == 0, updated.err
    assert "alpn:        http/1.1, h2\n" in updated.out
    assert "alpn:        http/1.1, h2\n" in cli("edge-certs", "show", "shop").out
    refused = cli("edge-certs", "update", "shop", "--alpn", "h2,h3")
    assert refused.code == 1
    assert "400 invalid-alpn" in refused.err
    assert "alpn[1]" in refused.err
    kept = cli("edge-certs", "update", "shop", "--origin", "http://127.0.0.1:9")
    assert "alpn:        http/1.1, h2\n" in kept.out
