"""Split uploaded text into PEM blocks (RFC 7468) without trusting or echoing their contents.

Only the encapsulation boundaries are interpreted; text between blocks (whitespace, the
`openssl x509 -text` dump above a block) is ignored. A block's body is decoded only for the caller
to parse: nothing here ever puts body text into a message, because the body may be a private key.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from dataclasses import dataclass, field
from enum import StrEnum

# RFC 7468 §3 labels are printable ASCII without '-'. We accept any label text on one line so an
# odd label (say "OPENSSH PRIVATE KEY") is still seen as a block; the length is bounded.
_BOUNDARY = re.compile(r"-----(BEGIN|END) ?([^\r\n-]{0,200})-----")
_WHITESPACE = re.compile(r"\s+")


class BlockProblem(StrEnum):
    UNTERMINATED = "it has no matching END line"
    STRAY_END = "an END line has no matching BEGIN line"
    LABEL_MISMATCH = "its BEGIN and END labels differ"
    BAD_BASE64 = "its body is not valid base64"
    EMPTY = "its body is empty"


@dataclass(frozen=True)
class PemBlock:
    """One encapsulated block; `der` is None when `problem` says why it could not be decoded."""

    index: int  # 0-based position among the blocks of one upload
    label: str
    der: bytes | None
    problem: BlockProblem | None = None
    # Where the block stands in the text, from its BEGIN line to its END line (for a block with
    # no END line, to the end of its BEGIN line): lets a caller pass the block on as written.
    span: tuple[int, int] = field(default=(0, 0), compare=False)

    @property
    def is_private_key(self) -> bool:
        # Covers PKCS#8 ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY") and the traditional
        # OpenSSL forms ("RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", ...).
        return "PRIVATE KEY" in self.label

    def __repr__(self) -> str:
        # Never show the body: it may be key material (docs/management.md: a key is never echoed or
        # logged).
        return f"PemBlock(index={self.index}, label={self.label!r}, problem={self.problem})"


def split_pem_blocks(text: str) -> list[PemBlock]:
    """Every block in `text`, in order, including broken ones (reported, never silently dropped)."""
    blocks: list[PemBlock] = []
    open_label: str | None = None
    block_start = body_start = 0

    def add(
        label: str, der: bytes | None, problem: BlockProblem | None, span: tuple[int, int]
    ) -> None:
        blocks.append(PemBlock(len(blocks), label, der, problem, span))

    for match in _BOUNDARY.finditer(text):
        kind, label = match.group(1), match.group(2).strip()
        if kind == "BEGIN":
            if open_label is not None:
                add(open_label, None, BlockProblem.UNTERMINATED, (block_start, body_start))
            open_label, block_start, body_start = label, match.start(), match.end()
        elif open_label is None:
            add(label, None, BlockProblem.STRAY_END, match.span())
        elif label != open_label:
            # Report under the BEGIN label so a key opened as "PRIVATE KEY" is still seen as one.
            add(open_label, None, BlockProblem.LABEL_MISMATCH, (block_start, match.end()))
            open_label = None
        else:
            der, problem = _decode_body(text[body_start : match.start()])
            add(open_label, der, problem, (block_start, match.end()))
            open_label = None
    if open_label is not None:
        add(open_label, None, BlockProblem.UNTERMINATED, (block_start, body_start))
    return blocks


@dataclass(frozen=True)
class BlockError:
    """Why one block of an upload is not a certificate: a stable type slug and a safe detail."""

    type: str
    detail: str


def certificate_blocks(text: str) -> list[tuple[int, bytes] | BlockError]:
    """(block index, DER) per CERTIFICATE block, a BlockError per other block, in order."""
    out: list[tuple[int, bytes] | BlockError] = []
    for b in split_pem_blocks(text):
        if b.is_private_key:
            detail = f"a private key was found in block {b.index}; remove it — it was not stored"
            out.append(BlockError("private-key-in-upload", detail))
        elif b.label != "CERTIFICATE":
            detail = f"block {b.index} is a {b.label[:64]!r} block; only CERTIFICATE is accepted"
            out.append(BlockError("unsupported-pem-block", detail))
        elif b.der is None:
            out.append(
                BlockError("malformed-pem", f"block {b.index} is not valid PEM: {b.problem}")
            )
        else:
            out.append((b.index, b.der))
    if not out:
        out.append(BlockError("malformed-pem", "no PEM block found; expected CERTIFICATE blocks"))
    return out


def _decode_body(body: str) -> tuple[bytes | None, BlockProblem | None]:
    # Strict base64: RFC 7468 headers ("Proc-Type: ...") are not allowed in a CERTIFICATE
    # block and make it fail here, which is what we want.
    compact = _WHITESPACE.sub("", body)
    if not compact:
        return None, BlockProblem.EMPTY
    try:
        return b64decode(compact, validate=True), None
    except (binascii.Error, ValueError):
        return None, BlockProblem.BAD_BASE64
