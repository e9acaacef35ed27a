"""Typed converters for config values: each takes `(value, dotted_key)`, returns or raises.

`Table` refuses unknown keys *before* anything else (so a typo is reported as a typo, not as the
missing key it was meant to be) and names every value it rejects by its dotted key.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from edgeproxy.config.model import (
    ConfigError,
    HostPort,
)
from edgeproxy.domain.hostnames import hostname_problem, url_problem

T = TypeVar("T")
D = TypeVar("D")
Converter = Callable[[Any, str], T]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # node and certificate names
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # recorded as the actor
_CA_SET_NAME = re.compile(r"[A-Za-z0-9_.%-]{3,64}")  # docs/management.md
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LISTEN = re.compile(
    r"\[(?P<v6>[^\]]+)\]:(?P<p6>[0-9]{1,5})|(?P<host>[^:\[\]]+):(?P<port>[0-9]{1,5})"
)

_KINDS: dict[type, str] = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
_KINDS |= {list: "an array", dict: "a table"}


def fail(key: str, reason: str) -> NoReturn:
    raise ConfigError(f"{key}: {reason}", key=key)


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


class Table:
    """One TOML table being read, known by its dotted key; unknown keys fail at construction."""

    def __init__(self, data: Any, key: str, allowed: Iterable[str]) -> None:
        if not isinstance(data, dict):
            fail(key, f"must be a table, not {_kind(data)}")
        self.key = key
        self._data: dict[str, Any] = data
        known = sorted(allowed)
        for name in data:
            if name not in known:
                hint = "".join(
                    f" (did you mean {m!r}?)" for m in difflib.get_close_matches(name, known, n=1)
                )
                fail(self.at(name), "unknown key" + hint)

    def at(self, name: str) -> str:
        part = name if _BARE_KEY.fullmatch(name) else json.dumps(name)
        return f"{self.key}.{part}" if self.key else part

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def req(self, name: str, conv: Converter[T]) -> T:
        if name not in self._data:
            fail(self.at(name), "is required")
        return conv(self._data[name], self.at(name))

    def opt(self, name: str, conv: Converter[T], default: D) -> T | D:
        return conv(self._data[name], self.at(name)) if name in self._data else default

    def fields(self, spec: Mapping[str, Converter[Any]]) -> dict[str, Any]:
        """The converted values of the keys present, to let the dataclass defaults fill the rest."""
        return {k: conv(self._data[k], self.at(k)) for k, conv in spec.items() if k in self._data}

    def table(self, name: str, allowed: Iterable[str]) -> Table:
        """A sub-table; an absent one reads as empty (every key takes its default)."""
        return Table(self._data.get(name, {}), self.at(name), allowed)

    def tables(self, name: str, allowed: Iterable[str]) -> list[Table]:
        """An array of tables (`[[x]]` or `x = [{...}]`); absent reads as empty."""
        items = as_list(self._data.get(name, []), self.at(name))
        return [Table(item, f"{self.at(name)}[{i}]", allowed) for i, item in enumerate(items)]


# -- scalar converters --------------------------------------------------------------------------


def as_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        fail(key, f"must be a string, not {_kind(value)}")
    return value


def as_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        fail(key, f"must be a boolean, not {_kind(value)}")
    return value


def as_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # bool is an int subclass
        fail(key, f"must be an integer, not {_kind(value)}")
    return value


def as_float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(key, f"must be a number, not {_kind(value)}")
    if not math.isfinite(value):
        fail(key, "must be a finite number")
    return float(value)


def as_list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        fail(key, f"must be an array, not {_kind(value)}")
    return value


def int_range(low: int, high: int | None = None) -> Converter[int]:
    def conv(value: Any, key: str) -> int:
        number = as_int(value, key)
        if number < low or (high is not None and number > high):
            fail(key, f"must be at least {low}" if high is None else f"must be {low}..{high}")
        return number

    return conv


def positive_float(value: Any, key: str) -> float:
    number = as_float(value, key)
    if number <= 0:
        fail(key, "must be a positive number")
    return number


def float_range(low: float, high: float) -> Converter[float]:
    def conv(value: Any, key: str) -> float:
        number = as_float(value, key)
        if not low <= number <= high:
            fail(key, f"must be {low:g}..{high:g}")
        return number

    return conv


def one_of(*options: str) -> Converter[str]:
    def conv(value: Any, key: str) -> str:
        if as_str(value, key) not in options:
            fail(key, f"must be one of {', '.join(options)}")
        return cast(str, value)

    return conv


def matching(pattern: re.Pattern[str], what: str) -> Converter[str]:
    def conv(value: Any, key: str) -> str:
        if not pattern.fullmatch(as_str(value, key)):
            fail(key, f"must be {what}")
        return cast(str, value)

    return conv


def str_list(item: Converter[str], *, non_empty: bool = False) -> Converter[tuple[str, ...]]:
    """An array of strings, each converted by `item`; duplicates (after conversion) are errors."""

    def conv(value: Any, key: str) -> tuple[str, ...]:
        items = as_list(value, key)
        if non_empty and not items:
            fail(key, "must not be empty")
        out: list[str] = []
        for i, raw in enumerate(items):
            converted = item(raw, f"{key}[{i}]")
            if converted in out:
                fail(f"{key}[{i}]", f"duplicate {converted!r}")
            out.append(converted)
        return tuple(out)

    return conv


def ca_set_name(value: Any, key: str) -> str:
    name = as_str(value, key)
    if not _CA_SET_NAME.fullmatch(name) or "..." in name:
        fail(key, "must be 3-64 characters of A-Z a-z 0-9 _ . % - without '...'")
    return name


name_str = matching(NAME, "1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit")


def hostname(value: Any, key: str, *, wildcard: bool = True) -> str:
    """A DNS name for SNI matching, lower-cased; `*.` may replace the first label only."""
    text = as_str(value, key)
    problem = hostname_problem(text, wildcard=wildcard)
    if problem is not None:
        fail(key, problem)
    return text.lower()


def listen(value: Any, key: str) -> HostPort:
    text = as_str(value, key)
    match = _LISTEN.fullmatch(text)
    if not match:
        fail(key, 'must be "host:port" (IPv6 as "[::1]:9000")')
    if match["v6"] is not None:
        host, port = match["v6"], int(match["p6"])
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            fail(key, f"{host!r} is not an IPv6 address")
    else:
        host, port = match["host"], int(match["port"])
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            host = hostname(host, key, wildcard=False)
    if port > 65535:
        fail(key, "port must be 0..65535")
    return HostPort(host, port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_url(*schemes: str) -> Converter[str]:
    """`scheme://host[:port][/]`, returned unchanged; errors never echo it (it may hold secrets)."""

    def conv(value: Any, key: str) -> str:
        text = as_str(value, key)
        problem = url_problem(text, *schemes)
        if problem is not None:
            fail(key, problem)
        return text

    return conv


def path_in(base: Path) -> Converter[Path]:
    """A file path; relative ones are taken from the config file's directory."""

    def conv(value: Any, key: str) -> Path:
        if not as_str(value, key):
            fail(key, "must not be empty")
        # abspath, not resolve(): a symlink swapped under us (certificate rotation) keeps working.
        return Path(os.path.abspath(base / value))

    return conv


def existing_file(path: Path, key: str) -> None:
    if not path.is_file():
        fail(key, f"no such file: {path}")


def store_url(base: Path) -> Converter[str]:
    def conv(value: Any, key: str) -> str:
        url = as_str(value, key)
        if url.startswith(("postgresql://", "postgres://")):
            if url.endswith("://"):
                fail(key, "names no server")
            return url  # unchanged: asyncpg parses it (and it may hold a password: never echoed)
        if url.startswith("sqlite:///"):
            rest = url.removeprefix("sqlite:///")  # "/abs/path" (from sqlite:////) or "rel/path"
            if rest.startswith("/"):  # POSIX keeps a leading "//" as is; we want one
                rest = "/" + rest.lstrip("/")
            if not rest.strip("/") or rest.endswith("/"):
                fail(key, "must name a database file")
            if "?" in rest or "#" in rest:
                fail(key, "query strings are not supported in sqlite URLs")
            return "sqlite:///" + Path(os.path.abspath(base / rest)).as_posix()
        fail(key, "must be sqlite:///relative/path, sqlite:////absolute/path or postgresql://...")

    return conv


# -- tables -------------------------------------------------------------------------------------
