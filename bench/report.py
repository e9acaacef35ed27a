"""The docs/performance.md table, printed and kept as JSON:

    figure | nginx | edgeproxy | ratio | floor | met? | target | met?

The floor is what the code must keep (a regression when not met); the target is what issue-level
work aims at. Either cell is empty when the figure has none, `met?` is `n/a` when not measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from bench.rig import PROXIES

MiB = 1024 * 1024
KiB = 1024
MB = 1000 * 1000


@dataclass
class Row:
    figure: str
    nginx: str
    edgeproxy: str
    ratio: str = ""
    floor: str = ""
    floor_met: str = ""  # "yes" | "NO" | "" (no floor) | "n/a" (not measured)
    target: str = ""
    target_met: str = ""  # likewise, against the target


HEADER = Row("figure", "nginx", "edgeproxy", "ratio", "floor", "met?", "target", "met?")


def _per_proxy(cells: Iterable[str]) -> tuple[str, str]:
    """A row's two measured cells, in PROXIES order (nginx, then edgeproxy)."""
    nginx, edgeproxy = cells
    return nginx, edgeproxy


def _f(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def _at_least(ratio: float | None, times: float | None) -> tuple[str, str]:
    """(criterion, met?) for "edgeproxy >= `times` x nginx"; nothing when `times` is None."""
    if times is None:
        return "", ""
    return f">= {times} x nginx", _met(None if ratio is None else ratio >= times)


def _throughput_rows(
    label: str,
    fig: dict[str, Any],
    *,
    floor: float | None = None,
    target: float | None = None,
    equal_tickets: bool | None = True,
) -> list[Row]:
    """The raw rate (held to the floor) and the rate per proxy CPU-second (held to the floor and
    the target; the target only counts at equal TLS 1.3 ticket counts when `equal_tickets` is
    given as False, and is `n/a` when they were not counted)."""
    n, e = fig["nginx"], fig["edgeproxy"]
    raw = _ratio(e["median_rps"], n["median_rps"])
    cpu = _ratio(e["median_per_cpu_second"], n["median_per_cpu_second"])
    goal, goal_met = _at_least(cpu, target)
    if target is not None and not equal_tickets:
        goal_met = "n/a" if equal_tickets is None else "NO"
    return [
        Row(
            f"{label} /s",
            _f(n["median_rps"]),
            _f(e["median_rps"]),
            _f(raw, 2),
            *_at_least(raw, floor),
        ),
        Row(
            f"  same, per proxy CPU-second (proxy CPU {n['median_proxy_cpu']:.0%} / "
            f"{e['median_proxy_cpu']:.0%})",
            _f(n["median_per_cpu_second"]),
            _f(e["median_per_cpu_second"]),
            _f(cpu, 2),
            *_at_least(cpu, floor),
            goal,
            goal_met,
        ),
    ]


def _handshake_rows(results: dict[str, Any]) -> list[Row]:
    tickets = results.get("tickets") or {}
    counted = [tickets.get(name) for name in PROXIES]
    equal = None if None in counted else counted[0] == counted[1]
    shown = " / ".join("?" if c is None else str(c) for c in counted)
    rows: list[Row] = []
    hs = results.get("handshakes", {})
    for server, label in (("ecdsa-p256", "ECDSA P-256"), ("rsa-2048", "RSA-2048")):
        if server in hs:
            rows += _throughput_rows(
                f"new mTLS handshakes, {label}, TLS 1.3, c=64, tickets {shown}",
                hs[server],
                floor=0.9,
                target=1.2,
                equal_tickets=equal,
            )
    return rows


def _http2_rows(h2: dict[str, Any]) -> list[Row]:
    rows = _throughput_rows(
        f"new HTTP/2 mTLS connections, {h2['per_connection']} streams each, c={h2['batch']}",
        h2["connections"],
    )
    rows += _throughput_rows(
        f"HTTP/2 requests, {h2['mux_connections']} conns x {h2['mux_streams']} streams",
        h2["multiplexed"],
        target=0.5,
    )
    refused = h2["refused_without_certificate"]
    ok = _met(refused["edgeproxy"])
    rows.append(
        Row(
            "  HTTP/2 client without a certificate",
            *_per_proxy("refused" if refused[name] else "SERVED" for name in PROXIES),
            "",
            "refused",
            ok,
            "refused",
            ok,
        )
    )
    return rows


def _latency_rows(lat: dict[str, Any]) -> list[Row]:
    n, e = lat["nginx"], lat["edgeproxy"]
    added, clean = e["added_p99_ms"], e["errors"] == 0
    return [
        Row(
            f"p50 / p99 ms at {lat['offered_rps']:,.0f} req/s (origin "
            f"{lat['origin']['p50_ms']:.2f} / {lat['origin']['p99_ms']:.2f})",
            f"{n['p50_ms']:.2f} / {n['p99_ms']:.2f}",
            f"{e['p50_ms']:.2f} / {e['p99_ms']:.2f}",
            _f(_ratio(e["p99_ms"], n["p99_ms"]), 2),
            "(info)",
        ),
        Row(
            "added p99 over the origin, ms",
            f"{n['added_p99_ms']:.2f}",
            f"{added:.2f}",
            "",
            "<= 2 ms",
            _met(added <= 2 and clean),
            "<= 1 ms",
            _met(added <= 1 and clean),
        ),
    ]


def _activation_row(label: str, fig: dict[str, Any] | None) -> Row:
    if not fig or fig.get("p99_ms") is None:
        return Row(label, "-", "not measured", "", "p99 <= 250 ms", "n/a", "p99 <= 100 ms", "n/a")
    text = f"{fig['p50_ms']:.0f} / {fig['p99_ms']:.0f} (n={fig['activations']})"
    p99 = fig["p99_ms"]
    return Row(
        label, "-", text, "", "p99 <= 250 ms", _met(p99 <= 250), "p99 <= 100 ms", _met(p99 <= 100)
    )


# "Within a second" (a binding change enforced, a blocked certificate refused): floor and target.
CHANGE_P99_MS = 1000


def _change_row(label: str, fig: dict[str, Any] | None) -> Row:
    """A binding change or a block: p99 <= 1 s as floor and target, and every sample asked for
    taken (a change never applied has no latency, but is no success either)."""
    goal = f"p99 <= {CHANGE_P99_MS} ms"
    if not fig or fig.get("p99_ms") is None:
        return Row(label, "-", "not measured", "", goal, "n/a", goal, "n/a")
    text = f"{fig['p50_ms']:.0f} / {fig['p99_ms']:.0f} (n={fig['samples']})"
    complete = fig["samples"] == fig["asked"] and not fig["problems"]
    ok = _met(fig["p99_ms"] <= CHANGE_P99_MS and complete)
    return Row(label, "-", text, "", goal, ok, goal, ok)


def _trust_rows(results: dict[str, Any]) -> list[Row]:
    rows = [
        _activation_row(
            "activation -> applied p50 / p99 ms, SQLite", results.get("activation_sqlite")
        ),
        _activation_row(
            "activation -> applied p50 / p99 ms, PostgreSQL", results.get("activation_postgres")
        ),
    ]
    for store, key in (("SQLite", "sqlite"), ("PostgreSQL", "postgres")):
        rows.append(
            _change_row(
                f"binding change -> applied p50 / p99 ms, {store}", results.get(f"binding_{key}")
            )
        )
    for store, key in (("SQLite", "sqlite"), ("PostgreSQL", "postgres")):
        rows.append(
            _change_row(f"block -> refused p50 / p99 ms, {store}", results.get(f"block_{key}"))
        )
    big = results.get("big_activation")
    if big:
        during_p99, base_p99 = big["during_p99_ms"], big["baseline_p99_ms"]
        ratio = _ratio(during_p99, base_p99)
        clean = big["errors"] == 0
        rows.append(
            Row(
                "handshake p99 ms while a 300-cert version is activated (vs without)",
                "-",
                f"{_f(during_p99, 1)} (without: {_f(base_p99, 1)}; "
                f"n={big['during_handshakes']}, {big['activations']} activations)",
                _f(ratio, 2),
                "0 failed",
                _met(clean),
                "<= 2 x without",
                _met(None if ratio is None else ratio <= 2 and clean),
            )
        )
    during = results.get("during_activation")
    if during:
        cells = [
            f"{during[name]['client_failed']} (client) / {during[name]['server_failed']} (server)"
            for name in PROXIES
        ]
        e = during["edgeproxy"]
        ok = _met(e["client_failed"] == 0 and e["server_failed"] == 0 and e["switched_ok"])
        rows.append(
            Row(
                f"handshakes failed across {during['switches']} trust changes under load",
                *_per_proxy(cells),
                "",
                "0",
                ok,
                "0",
                ok,
            )
        )
    return rows


def _memory_rows(mem: dict[str, Any]) -> list[Row]:
    n, e = mem["nginx"], mem["edgeproxy"]
    idle = e["idle_rss"]
    rows = [
        Row(
            "idle RSS per worker, MiB",
            _f(n["idle_rss"] / MiB, 1),
            _f(idle / MiB, 1),
            _f(idle / n["idle_rss"], 1),
            "<= 80 MiB",
            _met(idle <= 80 * MiB),
            "<= 40 MiB",
            _met(idle <= 40 * MiB),
        )
    ]
    after = mem.get("after_load_rss")
    if after:
        rows.append(
            Row(
                "  idle RSS per worker after all load figures, MiB",
                _f(after["nginx"] / MiB, 1),
                _f(after["edgeproxy"] / MiB, 1),
                _f(after["edgeproxy"] / after["nginx"], 1),
                "(info)",
            )
        )
    per = [m["per_connection"] for m in (n, e)]
    ours = per[1]
    rows.append(
        Row(
            f"memory per idle mTLS connection (N={mem['n']}), KiB",
            _f(None if per[0] is None else per[0] / KiB, 1),
            _f(None if ours is None else ours / KiB, 1),
            _f(_ratio(ours, per[0]), 1),
            "<= 64 KiB",
            _met(None if ours is None else ours <= 64 * KiB),
            "<= 30 KiB",
            _met(None if ours is None else ours <= 30 * KiB),
        )
    )
    return rows


def _held_row(held: dict[str, Any]) -> Row:
    cells = []
    for name in PROXIES:
        h = held[name]
        errors = sum(h["errors"].values())
        cells.append(f"{h['still_open']:,}/{h['requested']:,} held, {errors} errors")
    e = held["edgeproxy"]
    ok = _met(
        e["still_open"] == e["requested"] and not e["errors"] and e["probe_ok"] and e["proxy_alive"]
    )
    return Row(
        f"{e['requested']:,} concurrent idle mTLS connections, one worker",
        *_per_proxy(cells),
        "",
        "held, no errors",
        ok,
        "held, no errors",
        ok,
    )


def _after_burst_row(burst: dict[str, Any], mem: dict[str, Any] | None) -> Row:
    """RSS `wait` seconds after the held connections closed, against 2 x idle + 50 MB. A proxy
    read later than that (nginx, while edgeproxy's burst outlasted the wait) says when."""
    wait = burst["wait"]
    cells = []
    for name in PROXIES:
        late = burst[name]["seconds_after"] - wait > 2
        at = f" (at {burst[name]['seconds_after']:.0f} s)" if late else ""
        cells.append(_f(burst[name]["rss"] / MiB, 1) + at)
    rss = burst["edgeproxy"]["rss"]
    idle = (mem or {}).get("edgeproxy", {}).get("idle_rss")
    limit = None if idle is None else 2 * idle + 50 * MB
    return Row(
        f"RSS {wait:.0f} s after the {burst['connections']:,}-connection burst, MiB",
        *_per_proxy(cells),
        _f(_ratio(rss, burst["nginx"]["rss"]), 1),
        "(info)",
        "",
        "<= 2 x idle + 50 MB" + ("" if limit is None else f" ({limit / MiB:,.0f} MiB)"),
        _met(None if limit is None else rss <= limit),
    )


def build(results: dict[str, Any]) -> list[Row]:
    rows = _handshake_rows(results)
    if "keepalive" in results:
        rows += _throughput_rows(
            "keep-alive proxied requests, 16 conns", results["keepalive"], floor=0.35, target=0.6
        )
    if results.get("http2"):
        rows += _http2_rows(results["http2"])
    if results.get("latency"):
        rows += _latency_rows(results["latency"])
    rows += _trust_rows(results)
    if results.get("memory"):
        rows += _memory_rows(results["memory"])
    if results.get("held"):
        rows.append(_held_row(results["held"]))
    if results.get("after_burst"):
        rows.append(_after_burst_row(results["after_burst"], results.get("memory")))
    return rows


def render(rows: list[Row]) -> str:
    table = [HEADER, *rows]
    fields = list(asdict(HEADER))
    widths = [max(len(getattr(r, f)) for r in table) for f in fields]
    lines = []
    for i, row in enumerate(table):
        cells = [getattr(row, f).ljust(w) for f, w in zip(fields, widths, strict=True)]
        lines.append(" | ".join(cells).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)
