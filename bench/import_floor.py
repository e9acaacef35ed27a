"""What an edge worker's idle RSS is made of before it holds anything: the RSS of a fresh
interpreter after importing, one after the other, the libraries the edge node is built on, then
the node itself.

    .venv/bin/python -m bench.import_floor [--runs 3]

Each run is a new interpreter (`python -c`), so nothing is shared with this process; each figure
is the median over the runs. The idle RSS the main bench reports can never go below the row
before `edgeproxy.node.main`: that is the floor of the chosen stack, not of our code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

# In the order a worker needs them: event loop, TLS, HTTP/2, HTTP/1.1, store, metrics, the status
# and metrics listener; then everything the `edgeproxy serve` process imports.
LIBRARIES = (
    "uvloop",
    "OpenSSL.SSL",
    "h2.connection",
    "httptools",
    "aiosqlite",
    "prometheus_client",
    "aiohttp.web",
)
NODE = "edgeproxy.node.main"

_PROBE = """
import importlib, json, sys
def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
steps = [["(interpreter)", rss_kib()]]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append([name, rss_kib()])
print(json.dumps(steps))
"""


def one_run(modules: list[str]) -> list[tuple[str, int]]:
    """[(module, VmRSS in KiB after importing it and every module before it)], in a fresh
    interpreter; the first entry is the bare interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [(name, int(kib)) for name, kib in json.loads(done.stdout)]


def measure(modules: list[str], runs: int) -> list[tuple[str, float]]:
    """The median VmRSS (KiB) after each step over `runs` fresh interpreters."""
    samples = [one_run(modules) for _ in range(runs)]
    names = [name for name, _ in samples[0]]
    return [(name, statistics.median(run[i][1] for run in samples)) for i, name in enumerate(names)]


def table(steps: list[tuple[str, float]]) -> str:
    lines = ["| after importing | RSS, MiB | added, MiB |", "|---|---|---|"]
    previous = None
    for name, kib in steps:
        added = "—" if previous is None else f"{(kib - previous) / 1024:.1f}"
        lines.append(f"| {name} | {kib / 1024:.1f} | {added} |")
        previous = kib
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench.import_floor", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="fresh interpreters (median reported)")
    args = p.parse_args(argv)
    print(table(measure([*LIBRARIES, NODE], args.runs)))


if __name__ == "__main__":
    main()
