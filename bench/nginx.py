"""nginx as the bench's origin and as the yardstick mTLS reverse proxy (docs/performance.md).

The proxy does what edgeproxy's binding does: TLS 1.2/1.3 with the same TLS 1.2 suites, client
certificate required and verified against the CA file (the CA list is sent, as
`send_ca_list_to_client = true`), stateless tickets only (`ssl_session_cache none`, nginx's default,
two TLS 1.3 tickets per full handshake), SNI/Host agreement (421), identity headers stripped inbound
and set outbound (XFCC-like, verify status, X-Forwarded-*, Via), a keep-alive upstream pool, and one
access-log line per request written unbuffered to a file, as edgeproxy writes one JSON line per
request to stderr (redirected to a file). HTTP/2 is offered by ALPN next to HTTP/1.1, as edgeproxy's
default `alpn = ["h2", "http/1.1"]` does.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
from pathlib import Path

from bench import procs
from bench.pki import Pki

TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

_MAIN = """\
{user}
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log {error_level};
events {{ worker_connections {connections}; multi_accept on; }}
http {{
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_header_timeout 120s;
{body}
}}
"""

_ORIGIN = """\
  access_log off;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
"""

_PROXY = """\
  log_format bench '$time_iso8601 $remote_addr:$remote_port $ssl_server_name $ssl_protocol '
                   '"$ssl_client_s_dn" $ssl_client_serial $ssl_client_fingerprint '
                   '$ssl_client_verify "$request" $status $body_bytes_sent $request_time '
                   '$upstream_response_time';
  access_log {dir}/access.log bench;
  upstream origin {{
    server 127.0.0.1:{origin_port};
    keepalive 64;
    keepalive_requests 100000000;
  }}
  server {{
    listen 127.0.0.1:{port} ssl{listen_http2} backlog=4096;
    {http2_on}
    server_name localhost;
    ssl_certificate {chain};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {ciphers};
    ssl_prefer_server_ciphers on;
    ssl_client_certificate {client_ca};
    ssl_verify_client on;
    ssl_verify_depth 5;
    location / {{
      if ($host != $ssl_server_name) {{ return 421; }}
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header Via "1.1 nginx";
      proxy_set_header X-Forwarded-Client-Cert
        'Hash=$ssl_client_fingerprint;Subject="$ssl_client_s_dn";Cert="$ssl_client_escaped_cert"';
      proxy_set_header X-Client-Cert-Verify $ssl_client_verify;
      proxy_set_header Client-Cert "";
      proxy_set_header Client-Cert-Chain "";
    }}
  }}
"""


def _http2() -> dict[str, str]:
    """HTTP/2 on the proxy's listener (ALPN h2 and http/1.1, as edgeproxy's default): nginx 1.25.1
    moved the switch from a `listen` flag to an `http2 on` directive."""
    done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr + done.stdout)
    version = tuple(int(v) for v in found.groups()) if found else (0, 0, 0)
    if version >= (1, 25, 1):
        return {"listen_http2": "", "http2_on": "http2 on;"}
    return {"listen_http2": " http2", "http2_on": ""}


class Nginx:
    """One nginx master (daemon off) with one worker, in its own directory."""

    def __init__(self, processes: procs.Processes, directory: Path, name: str) -> None:
        self.processes = processes
        self.dir = directory
        self.name = name
        self.conf = directory / "nginx.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    def _write(self, body: str, error_level: str) -> None:
        user = "user root root;" if os.geteuid() == 0 else ""
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # run.py raised it
        self.conf.write_text(
            _MAIN.format(
                user=user,
                dir=self.dir,
                body=body,
                error_level=error_level,
                nofile=nofile,
                connections=max(1024, nofile - 256),
            )
        )

    def write_origin(self, port: int) -> None:
        self._write(_ORIGIN.format(port=port), "warn")

    def write_proxy(self, port: int, origin_port: int, pki: Pki, server: str, client_ca: Path):
        files = pki.servers[server]
        self._write(
            _PROXY.format(
                dir=self.dir,
                port=port,
                origin_port=origin_port,
                chain=files.chain,
                key=files.key,
                ciphers=TLS12_CIPHERS,
                client_ca=client_ca,
                **_http2(),
            ),
            # `info` is where nginx logs failed client handshakes, as edgeproxy logs them.
            "info",
        )

    def start(self, cpu: int, port: int, *, realtime: bool = False) -> None:
        argv = [
            "nginx",
            "-p",
            str(self.dir),
            "-c",
            str(self.conf),
            "-e",
            str(self.dir / "error.log"),
        ]
        argv += ["-g", "daemon off; master_process on;"]
        argv = procs.pinned(cpu, argv)
        self.proc = self.processes.start(self.name, procs.realtime(argv) if realtime else argv)
        procs.wait_port(port, 10, self.proc)

    def reload(self) -> None:
        """Graceful reload (SIGHUP): new workers take the new config, old ones finish in flight."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGHUP)

    def workers(self) -> list[int]:
        assert self.proc is not None
        return procs.children(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            self.processes.stop(self.proc)
            self.proc = None

    def handshake_failures_logged(self) -> int:
        """Failed client handshakes as nginx's error log (level info) records them, peers that
        closed mid-handshake included (edgeproxy counts those too, as reason `other`)."""
        path = self.dir / "error.log"
        if not path.exists():
            return 0
        markers = (
            "SSL_do_handshake() failed",
            "client SSL certificate verify error",
            "client sent no required SSL certificate",
            "while SSL handshaking",
        )
        with path.open(errors="replace") as f:
            return sum(1 for line in f if any(m in line for m in markers))
