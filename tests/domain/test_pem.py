"""domain.pem: each block's span is the block as written, broken blocks included (the CLI sends
blocks on as written, and reports broken ones by index)."""

from __future__ import annotations

from edgeproxy.domain.pem import BlockProblem, split_pem_blocks

GOOD = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----"
OPEN = "-----BEGIN CERTIFICATE-----"


def test_a_complete_block_spans_begin_to_end() -> None:
    text = f"dump above\n{GOOD}\ntrailer\n"
    (block,) = split_pem_blocks(text)
    assert (block.problem, block.der) == (None, b"\x00\x01\x02")
    start, end = block.span
    assert text[start:end] == GOOD


def test_broken_blocks_have_spans_too() -> None:
    text = f"{OPEN}\nAAEC\n{GOOD}\n-----END X509 CRL-----\n"
    unterminated, good, stray = split_pem_blocks(text)
    assert [b.problem for b in (unterminated, good, stray)] == [
        BlockProblem.UNTERMINATED,
        None,
        BlockProblem.STRAY_END,
    ]
    assert text[slice(*unterminated.span)] == OPEN
    assert text[slice(*good.span)] == GOOD
    assert text[slice(*stray.span)] == "-----END X509 CRL-----"
