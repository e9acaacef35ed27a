"""The README's recipes, run as written: its fenced blocks are read from README.md, so a recipe
that drifts fails here. The tutorial's openssl commands make the partner CA and client; the CRL
recipe revokes that client with `openssl ca`, the CRL goes through the admin API and the node
refuses the client with reason `revoked`; the curl section drives a running node's admin API and
works on the set it created (`$SET`), never on another."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from cryptography import x509

from support.admin import CA_SET
from support.nodes import ADMIN_TOKEN, poll

from .clients import Run, aget, refused, run_tool, tool
from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
SCRIPT_TIMEOUT = 60.0  # seconds for one block of openssl or curl commands


def sh_blocks() -> list[str]:
    """The bodies of README.md's ```sh blocks."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```sh\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def block_with(marker: str) -> str:
    """The one sh block holding `marker`."""
    found = [block for block in sh_blocks() if marker in block]
    assert len(found) == 1, f"README.md: {len(found)} sh blocks hold {marker!r}"
    return found[0]


def commands(block: str) -> list[str]:
    """The block's commands, comments left out: continued lines (`\\`, a trailing `|`) joined to
    their command, a heredoc kept with the command that opens it."""
    found: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.rstrip().endswith(("\\", "|")):
            command += "\n" + next(lines)
        heredoc = re.search(r"<<\s*'?(\w+)'?", command)
        if heredoc is not None:
            for body in lines:
                command += "\n" + body
                if body == heredoc.group(1):
                    break
        found.append(command)
    return found


def first_word(command: str) -> str:
    return command.split(maxsplit=1)[0]


async def run_script(directory: Path, script: str) -> Run:
    """`script` run by bash in `directory`, stopping at the first failing command."""
    tool("openssl")
    run = await run_tool(
        tool("bash"),
        "-euc",
        f"cd {shlex.quote(str(directory))}\n{script}",
        timeout=SCRIPT_TIMEOUT,
    )
    assert run.code == 0, f"exit {run.code}\n{script}\n--- stderr\n{run.stderr}"
    return run


async def tutorial_pki(directory: Path) -> Client:
    """The tutorial's partner root and issuing CA, then its partner client certificate: each
    openssl (and printf) command of the README's blocks, in the scratch directory."""
    await run_script(directory, block_with("-out partner-root.pem"))
    client_block = block_with("# A partner client certificate")
    made = [c for c in commands(client_block) if first_word(c) in {"openssl", "printf"}]
    await run_script(directory, "\n".join(made))
    cert, key = directory / "client.pem", directory / "client.key"
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    issuing = x509.load_pem_x509_certificate((directory / "partner-issuing.pem").read_bytes())
    assert leaf.issuer == issuing.subject
    return Client("partner-client", leaf, (), cert, key)


async def test_the_crl_recipe_revokes_the_tutorial_client(
    tmp_path: Path,
    pki: E2ePki,
    node_files: MakeFiles,
    start_node: StartNode,
    access_log: AccessLog,
) -> None:
    client = await tutorial_pki(tmp_path)
    node = await start_node(node_files())
    pems = [(tmp_path / name).read_text() for name in ("partner-root.pem", "partner-issuing.pem")]
    set_id, _ = await node.admin.publish(pems)
    assert (await aget(pki, node.port, "api.test", client, "/before")).status == 200

    recipe = commands(block_with("openssl ca -config crl.cnf -revoke"))
    cli = [c for c in recipe if first_word(c) == "edgeproxy"]
    made = await run_script(tmp_path, "\n".join(c for c in recipe if c not in cli))
    # The recipe's own check: `openssl crl -text | head -20` lists the client's serial.
    serial = f"{client.leaf.serial_number:X}"
    assert f"Serial Number: {serial.zfill(len(serial) + len(serial) % 2)}" in made.stdout

    # `edgeproxy crls add SET FILE`, through the admin API.
    [add] = [shlex.split(c) for c in cli if c.startswith("edgeproxy crls add ")]
    set_name, crl_file = add[3:5]
    sets = await node.admin.call("GET", "/ca-sets")
    [found] = [s["caSetId"] for s in sets["caSets"] if s["caSetName"] == set_name]
    assert (found, set_name) == (set_id, CA_SET)
    crl_pem = (tmp_path / crl_file).read_text()
    before = (await node.status.json("/status"))[1]["trust"]["revision"]
    await node.admin.call("POST", f"/ca-sets/{set_id}/crls", {"crlPem": crl_pem}, expect=(201,))
    listed = await node.admin.call("GET", f"/ca-sets/{set_id}/crls")
    assert len(listed["crls"]) == 1
    await node.status.wait_revision_after(before)

    # What the README says next: the next handshake is refused, the line names the CRL.
    await refused(pki, node.port, "api.test", client)
    [line] = access_log.records("handshake")
    assert (line.verify_reason, line.revocation_source) == ("revoked", "crl")
    assert line.client_subject == client.subject
    assert line.revoked_at is not None


async def test_the_curl_section_works_on_the_set_it_created(tmp_path: Path, node: Running) -> None:
    """Run as a reader would: the commands in order, waiting where the README says to follow
    the activation (a deactivation while one is in progress is a 409 activation-in-progress)."""
    tool("jq")
    await run_script(tmp_path, block_with("-out partner-root.pem"))
    block = block_with("SET=$(curl")
    admin_url = node.node.admin_url
    for written in ("http://127.0.0.1:9000", "Bearer dev-admin-token"):
        assert written in block, f"README.md's curl section no longer holds {written!r}"
    steps = commands(
        block.replace("http://127.0.0.1:9000", admin_url).replace(
            "Bearer dev-admin-token", f"Bearer {ADMIN_TOKEN}"
        )
    )
    [follow] = [i for i, c in enumerate(steps) if c.rstrip().endswith("/activations")]
    [deactivate] = [i for i, c in enumerate(steps) if "/deactivate" in c]
    setup = [c for c in steps if c.startswith(("API=", "AUTH="))]
    # Every curl call says on stderr what it asked and what it got.
    spy = (
        'curl() { command curl --write-out "%{stderr}%{http_code} %{method} %{url_effective}\\n"'
        ' "$@"; }'
    )
    first = await run_script(tmp_path, "\n".join([spy, *steps[: follow + 1]]))
    [created] = re.findall(r"^caSetId: (\d+)$", first.stdout, re.MULTILINE)
    assert int(created) != node.set_id  # the set that existed before
    stderr = first.stderr
    for part in (steps[follow + 1 : deactivate + 1], steps[deactivate + 1 :]):
        await settled(node, int(created))
        run = await run_script(tmp_path, "\n".join([spy, *setup, f"SET={created}", *part]))
        stderr += run.stderr

    api = f"{admin_url}/mtls-edge-truststore/v2"
    this = f"{api}/ca-sets/{created}"
    assert [tuple(line.split(" ", 2)) for line in stderr.splitlines()] == [
        ("201", "POST", f"{api}/ca-sets"),
        ("201", "POST", f"{this}/versions"),
        ("200", "POST", f"{api}/certificates/validate"),
        ("202", "POST", f"{this}/versions/1/activate"),
        ("200", "GET", f"{this}/activations"),
        ("202", "POST", f"{this}/versions/1/deactivate"),
        ("202", "DELETE", this),
        ("200", "GET", f"{this}/status/delete"),
    ]
    # The set that existed before is untouched: still its one version, still active.
    kept = await node.admin.call("GET", f"/ca-sets/{node.set_id}")
    assert kept["stagingVersion"] == node.version
    versions = await node.admin.call("GET", f"/ca-sets/{node.set_id}/versions")
    assert [v["version"] for v in versions["versions"]] == [node.version]


async def settled(node: Running, set_id: int) -> None:
    """Wait, as the reader following the activation does, until none of the set's is pending."""

    async def done() -> bool:
        body = await node.admin.call("GET", f"/ca-sets/{set_id}/activations")
        return all(a["activationStatus"] != "IN_PROGRESS" for a in body["activations"])

    await poll(done, f"the activations of CA set {set_id} to settle")
