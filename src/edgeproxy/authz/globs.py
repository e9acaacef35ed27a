"""Glob patterns of the authorization matchers, compiled once (when a policy is parsed).

`*` matches one or more characters other than the separator (`.` in a DNS name, `/` in a URI;
none elsewhere), `**` one or more of any character; every other character is literal. A pattern
without `*` is an exact comparison and compiles to no regular expression at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Glob:
    """One compiled pattern. `fold`: compare case-insensitively (DNS names, e-mail addresses)."""

    text: str
    regex: re.Pattern[str] | None
    fold: bool = False

    def matches(self, value: str) -> bool:
        if self.fold:
            value = value.lower()
        regex = self.regex
        return value == self.text if regex is None else regex.fullmatch(value) is not None

    def any(self, values: tuple[str, ...]) -> bool:
        return any(self.matches(v) for v in values)


def compile_glob(pattern: str, *, separator: str = "", fold: bool = False) -> Glob:
    """The pattern compiled; raises ValueError on `***` (ambiguous) or an empty pattern."""
    if not pattern:
        raise ValueError("must not be empty")
    if "***" in pattern:
        raise ValueError("'***' is ambiguous: use '*' within a part or '**' across parts")
    text = pattern.lower() if fold else pattern
    if "*" not in text:
        return Glob(text, None, fold)
    one = f"[^{re.escape(separator)}]+" if separator else ".+"
    parts = []
    for i, chunk in enumerate(text.split("**")):
        if i:
            parts.append(".+")
        parts.append(one.join(re.escape(piece) for piece in chunk.split("*")))
    return Glob(text, re.compile("".join(parts), re.DOTALL), fold)
