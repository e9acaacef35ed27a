"""`edgeproxy check-config` at `nginx -t` grade: each finding names the dotted key and the file;
errors exit 2, warnings do not; the store is asked about CA sets, never created."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import trustme

from edgeproxy.node.main import main
from edgeproxy.store import open_store


def write_config(tmp_path: Path, cert: Path, key: Path, hostnames: str = '["api.test"]') -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        f"""
[node]
name = "check"
network = "STAGING"
roles = ["edge"]
[store]
url = "sqlite:///{tmp_path / "store.db"}"
[edge]
listen = "127.0.0.1:0"
[[edge.certificates]]
name = "api"
hostnames = {hostnames}
certificate = "{cert}"
private_key = "{key}"
origin = "http://127.0.0.1:8080"
mutual_authentication = {{ ca_set = "partners" }}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert("api.test")
    cert, key = tmp_path / "chain.pem", tmp_path / "server.key"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return ca, cert, key


def check(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str]:
    code = main(["check-config", "-c", str(config)])
    return code, capsys.readouterr().err


def test_good_files_pass_and_the_store_is_never_created(
    tmp_path: Path, files: tuple[trustme.CA, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, cert, key = files
    code, err = check(capsys, write_config(tmp_path, cert, key))
    assert code == 0, err
    assert "warning: store.url: no SQLite store there yet" in err
    assert not (tmp_path / "store.db").exists()


def test_an_unknown_ca_set_is_a_warning_naming_the_binding(
    tmp_path: Path, files: tuple[trustme.CA, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, cert, key = files
    config = write_config(tmp_path, cert, key)

    async def make_store() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        await store.open()
        await store.close()

    asyncio.run(make_store())
    code, err = check(capsys, config)
    assert code == 0
    assert (
        "warning: edge.certificates[0].mutual_authentication.ca_set: no CA set named 'partners' "
        "in the store: api fails closed"
    ) in err


def test_a_key_of_another_certificate_is_an_error_naming_both_files(
    tmp_path: Path, files: tuple[trustme.CA, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ca, cert, _ = files
    other = tmp_path / "other.key"
    other.write_bytes(ca.issue_cert("api.test").private_key_pem.bytes())
    code, err = check(capsys, write_config(tmp_path, cert, other))
    assert code == 2
    assert (
        f"error: edge.certificates[0].private_key: {other} does not match the certificate of {cert}"
    ) in err
    assert "1 error(s); the node would not start" in err


def test_a_missing_file_names_its_key(
    tmp_path: Path, files: tuple[trustme.CA, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, cert, _ = files
    config = write_config(tmp_path, cert, tmp_path / "nowhere.key")
    code, err = check(capsys, config)
    assert code == 2
    assert err.startswith(f"{config}: error: edge.certificates[0].private_key: ")
    assert "nowhere.key" in err


@pytest.mark.parametrize(
    ("listen", "words"),
    [
        ("localhost", 'must be "host:port"'),
        ("127.0.0.1:99999", "port must be 0..65535"),
        ("[::1:443", 'must be "host:port"'),
        ("0.0.0.0:https", 'must be "host:port"'),
    ],
)
def test_a_listen_address_that_does_not_parse_names_the_file_and_its_key(
    tmp_path: Path,
    files: tuple[trustme.CA, Path, Path],
    capsys: pytest.CaptureFixture[str],
    listen: str,
    words: str,
) -> None:
    _, cert, key = files
    config = write_config(tmp_path, cert, key)
    config.write_text(config.read_text().replace('"127.0.0.1:0"', f'"{listen}"'))
    code, err = check(capsys, config)
    assert code == 2
    assert err.startswith(f"{config}: error: edge.listen: {words}")
    assert "the node would not start" in err


def test_host_names_chain_order_and_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = trustme.CA()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    leaf = ca.issue_cert("api.test", not_after=soon)
    cert, key = tmp_path / "chain.pem", tmp_path / "server.key"
    # Wrong order: the CA first, then the leaf.
    cert.write_bytes(ca.cert_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    code, err = check(capsys, write_config(tmp_path, cert, key, '["api.test", "www.test"]'))
    assert code == 2
    assert "error: edge.certificates[0].hostnames: 'www.test' is not among" in err
    assert "error: edge.certificates[0].certificate: " in err
    assert "is not the issuer of certificate 0" in err
    # The leaf is second here, the key is the leaf's: a mismatch too.
    assert "does not match the certificate" in err
    assert "warning: edge.certificates[0].certificate: " in err
    assert "certificate 1 (" in err
    assert "expires in 9 day(s)" in err
