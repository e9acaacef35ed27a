"""`make bench`'s table (bench/report.py): every floor and target judged from the figures given,
and the table readable. No figure here is measured: the results are built by hand."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.report import MB, KiB, MiB, Row


def _throughput(nginx_rps: float, edge_rps: float, nginx_cpu: float, edge_cpu: float) -> dict:
    def side(rps: float, cpu: float) -> dict[str, Any]:
        return {
            "median_rps": rps,
            "median_per_cpu_second": rps / cpu,
            "median_proxy_cpu": cpu,
        }

    return {"nginx": side(nginx_rps, nginx_cpu), "edgeproxy": side(edge_rps, edge_cpu)}


def _results(**changes: Any) -> dict[str, Any]:
    results: dict[str, Any] = {
        "tickets": {"nginx": 2, "edgeproxy": 2},
        "handshakes": {
            "ecdsa-p256": _throughput(1000, 1000, 1.0, 0.8),  # per CPU-second 1.25 x
            "rsa-2048": _throughput(800, 700, 1.0, 0.7),  # per CPU-second 1.25 x
        },
        "keepalive": _throughput(10_000, 3_000, 0.7, 1.0),  # per CPU-second 0.21 x
        "http2": {
            "batch": 64,
            "per_connection": 4,
            "mux_connections": 16,
            "mux_streams": 10,
            "connections": _throughput(900, 600, 1.0, 1.0),
            "multiplexed": _throughput(20_000, 11_000, 1.0, 1.0),  # 0.55 x
            "refused_without_certificate": {"nginx": True, "edgeproxy": True},
        },
        "big_activation": {
            "baseline_p99_ms": 10.0,
            "during_p99_ms": 25.0,
            "during_handshakes": 400,
            "activations": 3,
            "errors": 0,
        },
        "memory": {
            "n": 1000,
            "nginx": {"idle_rss": 12 * MiB, "per_connection": 25 * KiB},
            "edgeproxy": {"idle_rss": 39 * MiB, "per_connection": 31 * KiB},
        },
        "after_burst": {
            "connections": 10_000,
            "wait": 60.0,
            "nginx": {"rss": 220 * MiB, "seconds_after": 75.0},  # read late
            "edgeproxy": {"rss": 2 * 39 * MiB + 50 * MB, "seconds_after": 60.0},  # at the limit
        },
    }
    results.update(changes)
    return results


def _row(rows: list[Row], start: str) -> Row:
    found = [r for r in rows if r.figure.startswith(start)]
    assert len(found) == 1, [r.figure for r in rows]
    return found[0]


def test_per_cpu_rows_are_held_to_the_floor_and_the_target() -> None:
    rows = report.build(_results())
    ecdsa = rows[rows.index(_row(rows, "new mTLS handshakes, ECDSA")) + 1]
    assert (ecdsa.ratio, ecdsa.floor_met, ecdsa.target, ecdsa.target_met) == (
        "1.25",
        "yes",
        ">= 1.2 x nginx",
        "yes",
    )
    keepalive_raw = _row(rows, "keep-alive")
    keepalive = rows[rows.index(keepalive_raw) + 1]
    assert keepalive_raw.target == ""  # the targets are per proxy CPU-second
    assert (keepalive.ratio, keepalive.floor_met, keepalive.target_met) == ("0.21", "NO", "NO")
    mux = rows[rows.index(_row(rows, "HTTP/2 requests")) + 1]
    assert (mux.floor, mux.target, mux.target_met) == ("", ">= 0.5 x nginx", "yes")
    connections = rows[rows.index(_row(rows, "new HTTP/2 mTLS connections")) + 1]
    assert (connections.floor, connections.target) == ("", "")  # reported, no target


def test_handshake_target_counts_only_at_equal_ticket_counts() -> None:
    for tickets, expected in (({"nginx": 2, "edgeproxy": 1}, "NO"), ({}, "n/a")):
        rows = report.build(_results(tickets=tickets))
        per_cpu = rows[rows.index(_row(rows, "new mTLS handshakes, RSA")) + 1]
        assert per_cpu.ratio == "1.25"
        assert per_cpu.floor_met == "yes"
        assert per_cpu.target_met == expected


def test_memory_targets() -> None:
    rows = report.build(_results())
    idle = _row(rows, "idle RSS per worker, MiB")
    assert (idle.floor_met, idle.target_met) == ("yes", "yes")
    per_connection = _row(rows, "memory per idle mTLS connection")
    assert (per_connection.floor_met, per_connection.target_met) == ("yes", "NO")
    burst = _row(rows, "RSS 60 s after the 10,000-connection burst")
    assert burst.target_met == "yes"
    assert "126 MiB" in burst.target  # 2 x 39 MiB + 50 MB
    assert (burst.nginx, burst.edgeproxy) == ("220.0 (at 75 s)", "125.7")
    over = _results()
    over["after_burst"]["edgeproxy"]["rss"] += 1
    assert _row(report.build(over), "RSS 60 s after").target_met == "NO"


def test_activation_p99_against_twice_the_undisturbed_p99() -> None:
    row = _row(report.build(_results()), "handshake p99 ms while a 300-cert")
    assert (row.ratio, row.floor_met, row.target_met) == ("2.50", "yes", "NO")
    calmer = _results()
    calmer["big_activation"]["during_p99_ms"] = 20.0
    assert _row(report.build(calmer), "handshake p99 ms while").target_met == "yes"
    failed = _results()
    failed["big_activation"].update(during_p99_ms=12.0, errors=3)
    row = _row(report.build(failed), "handshake p99 ms while")
    assert (row.floor_met, row.target_met) == ("NO", "NO")


def test_http2_without_a_certificate_must_be_refused() -> None:
    results = _results()
    results["http2"]["refused_without_certificate"]["edgeproxy"] = False
    row = _row(report.build(results), "  HTTP/2 client without a certificate")
    assert (row.nginx, row.edgeproxy, row.floor_met, row.target_met) == (
        "refused",
        "SERVED",
        "NO",
        "NO",
    )


def test_render_aligns_every_column_under_its_header() -> None:
    text = report.render(report.build(_results()))
    lines = text.splitlines()
    header_bars = [i for i, ch in enumerate(lines[0]) if ch == "|"]
    assert len(header_bars) == 7  # eight columns: figure .. target met?
    assert lines[0].split()[8:] == ["floor", "|", "met?", "|", "target", "|", "met?"]
    for line in lines[2:]:
        bars = [i for i, ch in enumerate(line) if ch == "|"]
        assert bars == header_bars, line


def _change(p99: float, samples: int = 20, problems: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "samples": samples,
        "asked": 20,
        "p50_ms": 40.0,
        "p99_ms": p99,
        "problems": list(problems),
    }


def test_binding_change_and_block_are_held_to_one_second() -> None:
    results = _results(
        binding_sqlite=_change(120.0),
        binding_postgres=_change(1001.0),
        block_sqlite=_change(900.0, samples=12, problems=("block 13 not enforced within 10 s",)),
    )
    rows = report.build(results)
    fast = _row(rows, "binding change -> applied p50 / p99 ms, SQLite")
    assert (fast.edgeproxy, fast.floor, fast.floor_met, fast.target_met) == (
        "40 / 120 (n=20)",
        "p99 <= 1000 ms",
        "yes",
        "yes",
    )
    slow = _row(rows, "binding change -> applied p50 / p99 ms, PostgreSQL")
    assert (slow.floor_met, slow.target_met) == ("NO", "NO")
    # A block never enforced has no latency, yet the figure is not met.
    partial = _row(rows, "block -> refused p50 / p99 ms, SQLite")
    assert (partial.floor_met, partial.target_met) == ("NO", "NO")
    unmeasured = _row(rows, "block -> refused p50 / p99 ms, PostgreSQL")
    assert (unmeasured.edgeproxy, unmeasured.floor_met) == ("not measured", "n/a")
