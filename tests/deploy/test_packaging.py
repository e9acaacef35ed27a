"""Packaging (docs/operations.md): the wheel carries the console script and everything the package
reads at run time; the systemd unit verifies and is hardened; the Dockerfile runs as a non-root
user with a health check. This machine has a docker client but no daemon, so the image is not built
here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeproxy import __version__

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "edgeproxy.service"


@pytest.mark.slow
def test_pip_wheel_builds_a_wheel_with_the_console_script(tmp_path: Path) -> None:
    # A copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = out.glob("edgeproxy-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "[console_scripts]\nedgeproxy = edgeproxy.node.main:main" in text
    modules = {str(p.relative_to(REPO / "src")) for p in (REPO / "src" / "edgeproxy").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    migrations = {
        str(p.relative_to(REPO / "src"))
        for p in (REPO / "src" / "edgeproxy" / "store" / "migrations").rglob("*.sql")
    }
    assert migrations
    assert migrations <= names

    # Installed from the wheel alone (its dependencies are this interpreter's), the console
    # script runs and is the wheel's code, not this checkout's.
    target = tmp_path / "installed"
    pip_install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q"]
    install = subprocess.run(
        [*pip_install, "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = target / "bin" / "edgeproxy"
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, env=env
    )
    assert (version.returncode, version.stdout.strip()) == (0, f"edgeproxy {__version__}")
    where = subprocess.run(
        [sys.executable, "-c", "import edgeproxy.node.main as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_is_hardened_and_reloads_with_sighup() -> None:
    unit = unit_settings()
    assert unit["User"] == ["edgeproxy"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert unit["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert unit["ExecStart"][0].endswith("edgeproxy serve -c /etc/edgeproxy/edgeproxy.toml")
    # Reload checks the file, then SIGHUP: build aside and swap.
    assert [r.split()[-2:] for r in unit["ExecReload"]] == [
        ["-c", "/etc/edgeproxy/edgeproxy.toml"],
        ["-HUP", "$MAINPID"],
    ]


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found")
    # verify wants the executables to exist: point the unit at this checkout's.
    unit = tmp_path / "edgeproxy.service"
    executable = Path(sys.executable).with_name("edgeproxy")
    unit.write_text(UNIT.read_text().replace("/opt/edgeproxy/bin/edgeproxy", str(executable)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Overall exposure level for edgeproxy.service" in security.stdout
    assert security.stdout.rstrip().endswith(("OK 🙂", "SAFE 😀")), security.stdout[-200:]


def test_the_dockerfile_runs_as_a_user_with_a_health_check() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    [user] = [line for line in lines if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("root", "0")
    [health] = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert "/healthz" in "\n".join(lines[lines.index(health) :])
    assert any(line.startswith("ENTRYPOINT") and "edgeproxy" in line for line in lines)
