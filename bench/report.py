"""The docs/performance.md table: figure | nginx | edgeproxy | ratio | target | met?, printed and
kept as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024
KiB = 1024


@dataclass
class Row:
    figure: str
    nginx: str
    edgeproxy: str
    ratio: str
    target: str
    met: str  # "yes" | "NO" | "" (no target) | "n/a" (not measured)


def _f(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def _throughput_rows(label: str, fig: dict[str, Any], floor: float | None) -> list[Row]:
    n, e = fig["nginx"], fig["edgeproxy"]
    raw = _ratio(e["median_rps"], n["median_rps"])
    cpu = _ratio(e["median_per_cpu_second"], n["median_per_cpu_second"])
    if floor is None:
        return [
            Row(f"{label} /s", _f(n["median_rps"]), _f(e["median_rps"]), _f(raw, 2), "", ""),
            Row(
                _per_cpu_label(fig),
                _f(n["median_per_cpu_second"]),
                _f(e["median_per_cpu_second"]),
                _f(cpu, 2),
                "",
                "",
            ),
        ]
    return [
        Row(
            f"{label} /s",
            _f(n["median_rps"]),
            _f(e["median_rps"]),
            _f(raw, 2),
            f">= {floor} x nginx",
            _met(None if raw is None else raw >= floor),
        ),
        Row(
            _per_cpu_label(fig),
            _f(n["median_per_cpu_second"]),
            _f(e["median_per_cpu_second"]),
            _f(cpu, 2),
            f">= {floor} x nginx",
            _met(None if cpu is None else cpu >= floor),
        ),
    ]


def _per_cpu_label(fig: dict[str, Any]) -> str:
    n, e = fig["nginx"], fig["edgeproxy"]
    return (
        f"  same, per proxy CPU-second (proxy CPU {n['median_proxy_cpu']:.0%} / "
        f"{e['median_proxy_cpu']:.0%})"
    )


def _activation_row(label: str, fig: dict[str, Any] | None) -> Row:
    if not fig or fig.get("p99_ms") is None:
        return Row(label, "-", "not measured", "", "p99 <= 250 ms", "n/a")
    text = f"{fig['p50_ms']:.0f} / {fig['p99_ms']:.0f} (n={fig['activations']})"
    return Row(label, "-", text, "", "p99 <= 250 ms", _met(fig["p99_ms"] <= 250))


def build(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    hs = results.get("handshakes", {})
    for server, label in (("ecdsa-p256", "ECDSA P-256"), ("rsa-2048", "RSA-2048")):
        if server in hs:
            rows += _throughput_rows(
                f"new mTLS handshakes, {label}, TLS 1.3, c=64", hs[server], 0.9
            )
    if "keepalive" in results:
        rows += _throughput_rows(
            "keep-alive proxied requests, 16 conns", results["keepalive"], 0.35
        )
    h2 = results.get("http2")
    if h2:
        rows += _throughput_rows(
            f"new HTTP/2 mTLS connections, {h2['per_connection']} streams each, c={h2['batch']}",
            h2["connections"],
            None,
        )
        rows += _throughput_rows(
            f"HTTP/2 requests, {h2['mux_connections']} conns x {h2['mux_streams']} streams",
            h2["multiplexed"],
            None,
        )
        refused = h2["refused_without_certificate"]
        rows.append(
            Row(
                "  HTTP/2 client without a certificate",
                *("refused" if refused[name] else "SERVED" for name in ("nginx", "edgeproxy")),
                "",
                "refused",
                _met(refused["edgeproxy"]),
            )
        )
    lat = results.get("latency")
    if lat:
        n, e = lat["nginx"], lat["edgeproxy"]
        rows.append(
            Row(
                f"p50 / p99 ms at {lat['offered_rps']:,.0f} req/s (origin "
                f"{lat['origin']['p50_ms']:.2f} / {lat['origin']['p99_ms']:.2f})",
                f"{n['p50_ms']:.2f} / {n['p99_ms']:.2f}",
                f"{e['p50_ms']:.2f} / {e['p99_ms']:.2f}",
                _f(_ratio(e["p99_ms"], n["p99_ms"]), 2),
                "",
                "",
            )
        )
        rows.append(
            Row(
                "added p99 over the origin, ms",
                f"{n['added_p99_ms']:.2f}",
                f"{e['added_p99_ms']:.2f}",
                "",
                "<= 2 ms",
                _met(e["added_p99_ms"] <= 2 and e["errors"] == 0),
            )
        )
    rows.append(
        _activation_row(
            "activation -> applied p50 / p99 ms, SQLite", results.get("activation_sqlite")
        )
    )
    rows.append(
        _activation_row(
            "activation -> applied p50 / p99 ms, PostgreSQL", results.get("activation_postgres")
        )
    )
    big = results.get("big_activation")
    if big:
        during_p99, base_p99 = big["during_p99_ms"], big["baseline_p99_ms"]
        rows.append(
            Row(
                "handshake p99 ms while a 300-cert version is activated (vs without)",
                "-",
                f"{_f(during_p99, 1)} (without: {_f(base_p99, 1)}; "
                f"n={big['during_handshakes']}, {big['activations']} activations)",
                _f(_ratio(during_p99, base_p99), 2),
                "(info)",
                "" if big["errors"] == 0 else "NO",
            )
        )
    during = results.get("during_activation")
    if during:
        cells = {}
        for name in ("nginx", "edgeproxy"):
            d = during[name]
            cells[name] = f"{d['client_failed']} (client) / {d['server_failed']} (server)"
        e = during["edgeproxy"]
        ok = e["client_failed"] == 0 and e["server_failed"] == 0 and e["switched_ok"]
        rows.append(
            Row(
                f"handshakes failed across {during['switches']} trust changes under load",
                cells["nginx"],
                cells["edgeproxy"],
                "",
                "0",
                _met(ok),
            )
        )
    mem = results.get("memory")
    if mem:
        n, e = mem["nginx"], mem["edgeproxy"]
        rows.append(
            Row(
                "idle RSS per worker, MiB",
                _f(n["idle_rss"] / MiB, 1),
                _f(e["idle_rss"] / MiB, 1),
                _f(e["idle_rss"] / n["idle_rss"], 1),
                "<= 80 MiB",
                _met(e["idle_rss"] <= 80 * MiB),
            )
        )
        after = mem.get("after_load_rss")
        if after:
            rows.append(
                Row(
                    "  idle RSS per worker after all load figures, MiB",
                    _f(after["nginx"] / MiB, 1),
                    _f(after["edgeproxy"] / MiB, 1),
                    _f(after["edgeproxy"] / after["nginx"], 1),
                    "(info)",
                    "",
                )
            )
        per = [m["per_connection"] for m in (n, e)]
        rows.append(
            Row(
                f"memory per idle mTLS connection (N={mem['n']}), KiB",
                _f(None if per[0] is None else per[0] / KiB, 1),
                _f(None if per[1] is None else per[1] / KiB, 1),
                _f(_ratio(per[1], per[0]), 1),
                "<= 64 KiB",
                _met(None if per[1] is None else per[1] <= 64 * KiB),
            )
        )
    held = results.get("held")
    if held:
        cells = {}
        for name in ("nginx", "edgeproxy"):
            h = held[name]
            errors = sum(h["errors"].values())
            cells[name] = f"{h['still_open']:,}/{h['requested']:,} held, {errors} errors"
        e = held["edgeproxy"]
        ok = (
            e["still_open"] == e["requested"]
            and not e["errors"]
            and e["probe_ok"]
            and e["proxy_alive"]
        )
        rows.append(
            Row(
                f"{held['edgeproxy']['requested']:,} concurrent idle mTLS connections, one worker",
                cells["nginx"],
                cells["edgeproxy"],
                "",
                "held, no errors",
                _met(ok),
            )
        )
    return rows


def render(rows: list[Row]) -> str:
    header = Row("figure", "nginx", "edgeproxy", "ratio", "target", "met?")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in asdict(header)]
    lines = []
    for i, row in enumerate(table):
        cells = [getattr(row, f).ljust(w) for f, w in zip(asdict(row), widths, strict=True)]
        lines.append(" | ".join(cells).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)
