"""Processes the bench starts: CPU pinning, readiness, /proc readings, a cleanup that always runs.

Every process is started in its own session, so stopping it reaches its children too (nginx
workers) and nothing else: we only ever signal process groups we created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROXY_CPU = 1  # the proxy under test
LOAD_CPU = 0  # load generators, the origin, the admin process
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(cpu: int, argv: Sequence[str]) -> list[str]:
    """`argv` run on one CPU when we can pin, else as is (the report says which)."""
    return ["taskset", "-c", str(cpu), *argv] if pinning_available() else list(argv)


def realtime_available() -> bool:
    return shutil.which("chrt") is not None and os.geteuid() == 0


def realtime(argv: Sequence[str]) -> list[str]:
    """`argv` under SCHED_FIFO when we may: the origin shares the load CPU with load generators
    that keep it busy, and must not wait for their time slice (milliseconds) to answer."""
    return ["chrt", "-f", "1", *argv] if realtime_available() else list(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Processes:
    """Owns every long-running process of a bench run; `stop_all` is idempotent."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # type: ignore[call-overload]
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )
        log.close()
        self._procs.append(proc)
        return proc

    def spawn(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        """A short-lived helper (load generator, client) with text pipes; `forget` it when done."""
        proc = subprocess.Popen(  # type: ignore[call-overload]
            list(argv), text=True, start_new_session=True, **kw
        )
        self._procs.append(proc)
        return proc

    def communicate(
        self, proc: subprocess.Popen[str], timeout: float, input: str | None = None
    ) -> tuple[str, str, bool]:
        """(stdout, stderr, timed out) of a spawned helper, killed if it outlives `timeout`."""
        try:
            out, err = proc.communicate(input, timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        self.forget(proc)
        return out or "", err or "", timed_out

    def run(self, argv: Sequence[str], timeout: float) -> tuple[str, str, bool, int]:
        proc = self.spawn(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err, timed_out = self.communicate(proc, timeout)
        return out, err, timed_out, proc.returncode

    def forget(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            self.stop(proc)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # The leader may be gone while a child of its group lingers (an nginx worker).
        _signal_group(proc.pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            try:
                self.stop(proc)
            except Exception as error:  # keep stopping the others
                print(f"bench: could not stop {proc.args!r}: {error}")


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (works without CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * _PAGE


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_busy_seconds() -> list[float]:
    """Per-CPU busy time (everything but idle and iowait) since boot, from /proc/stat."""
    busy = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            values = [int(v) for v in line.split()[1:]]
            busy.append((sum(values[:8]) - values[3] - values[4]) / _TICKS)
    return busy


def _task_seconds() -> float:
    """user + nice + system over all CPUs: what processes used (interrupts and steal apart)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (values[0] + values[1] + values[2]) / _TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU used by `root` and its descendants, including children already reaped (cutime)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = sum(int(v) for v in fields[11:15]) / _TICKS  # utime stime cutime cstime
        table[int(entry.name)] = (int(fields[1]), used)
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo.extend(kids.get(pid, ()))
    return total


def least_disturbed(
    attempt: Callable[[], dict[str, Any]], *, limit: float = 0.25, tries: int = 2
) -> dict[str, Any]:
    """Run a measurement; while other processes took more than `limit` of a CPU during it (its
    `foreign_cpu`), run it again, `tries` attempts at most, and keep the least disturbed one."""
    results = []
    for _ in range(tries):
        results.append(attempt())
        if float(results[-1].get("foreign_cpu") or 0.0) <= limit:
            break
    best = min(results, key=lambda r: float(r.get("foreign_cpu") or 0.0))
    return {**best, "attempts": len(results)}


class CpuMeter:
    """CPU use over an interval: each CPU's busy fraction, the watched processes' share, and
    `foreign`: what processes outside this bench used (other work on the machine: noise)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._t = time.monotonic()
        self._cpus = cpu_busy_seconds()
        self._procs = sum(cpu_seconds(p) for p in self.pids)
        self._tasks = _task_seconds()
        self._ours = tree_cpu_seconds(os.getpid())

    def read(self) -> dict[str, Any]:
        wall = max(time.monotonic() - self._t, 1e-9)
        cpus = [(b - a) / wall for a, b in zip(self._cpus, cpu_busy_seconds(), strict=False)]
        proxy = (sum(cpu_seconds(p) for p in self.pids) - self._procs) / wall
        ours = tree_cpu_seconds(os.getpid()) - self._ours
        foreign = max(0.0, (_task_seconds() - self._tasks - ours) / wall)
        return {
            "proxy_cpu": round(proxy, 3),
            "cpus": [round(c, 3) for c in cpus],
            "foreign_cpu": round(foreign, 3),
        }
