"""The load tools and the yardstick, from Debian's packages when missing and we are root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

POLICY = Path("/usr/sbin/policy-rc.d")  # Debian's switch that keeps postinst from starting daemons
# command → Debian package
TOOLS = {
    "nginx": "nginx",
    "ab": "apache2-utils",
    "openssl": "openssl",
    "h2load": "nghttp2-client",
    "gcc": "build-essential",  # builds bench/client_cert_shim.c, h2load's client certificate
}


def ensure_tools() -> None:
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"bench: missing {', '.join(missing)}; install them (Debian: apt-get)")
    print(f"bench: installing {' '.join(missing)} from Debian", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
    # The nginx package would start a system nginx on port 80 that nobody asked for.
    ours = not POLICY.exists()
    if ours:
        POLICY.write_text("#!/bin/sh\nexit 101\n")
        POLICY.chmod(0o755)
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            timeout=300,
        )
    finally:
        if ours:
            POLICY.unlink(missing_ok=True)
    still = [cmd for cmd in TOOLS if shutil.which(cmd) is None]
    if still:
        raise SystemExit(f"bench: still missing after install: {', '.join(still)}")
