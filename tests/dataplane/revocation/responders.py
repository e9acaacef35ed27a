"""Backends for the tests' OCSP responder (`support.ocsp.Responder`):

* `OpenSslBackend`: the real responder, `openssl ocsp -index ... -CA ... -rsigner ... -rkey ...`,
  run once per request (`-reqin`/`-respout`, killed after `PROCESS_TIMEOUT`). Its network mode is
  not used because OpenSSL 3.0's `-port` takes a port number only and binds every interface.
* `BuiltBackend`: a response made with cryptography's `OCSPResponseBuilder`, for what a real
  responder would not send: a forgery, a stale answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from support.revocation_pki import HOUR, Ca, Issued, now

PROCESS_TIMEOUT = 5.0


def _serial_hex(serial: int) -> str:
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text


@dataclass
class OpenSslBackend:
    """The `openssl ocsp` responder over an index.txt of `statuses` (serial → "V" | "R")."""

    tmp: Path
    ca: Ca
    signer: Issued | Ca  # the CA itself, or a delegated responder certificate
    statuses: dict[int, str] = field(default_factory=dict)
    runs: int = 0

    def _index(self) -> str:
        expiry = (now() + 24 * HOUR).strftime("%y%m%d%H%M%SZ")
        revoked_at = (now() - HOUR).strftime("%y%m%d%H%M%SZ")
        lines = []
        for serial, flag in self.statuses.items():
            when = revoked_at if flag == "R" else ""
            lines.append(f"{flag}\t{expiry}\t{when}\t{_serial_hex(serial)}\tunknown\t/CN=x\n")
        return "".join(lines)

    async def __call__(self, request: bytes) -> bytes:
        self.runs += 1
        base = self.tmp / f"ocsp-{id(self)}-{self.runs}"
        index, req, resp = (base.with_suffix(s) for s in (".index", ".req", ".resp"))
        index.write_text(self._index())
        req.write_bytes(request)
        ca_pem = base.with_suffix(".ca")
        ca_pem.write_bytes(self.ca.cert.public_bytes(Encoding.PEM))
        proc = await asyncio.create_subprocess_exec(
            "openssl", "ocsp", "-index", str(index), "-CA", str(ca_pem),
            "-rsigner", str(self.signer.pem), "-rkey", str(self.signer.pem),
            "-reqin", str(req), "-respout", str(resp), "-nmin", "5",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(PROCESS_TIMEOUT):
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return resp.read_bytes()


@dataclass
class BuiltBackend:
    """Answers `status` for whatever is asked, signed by `key` as `signer`, over a chosen window."""

    signer: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD
    this_update: dt.timedelta = -HOUR  # relative to now
    next_update: dt.timedelta | None = HOUR
    include_signer: bool = True

    async def __call__(self, request: bytes) -> bytes:
        req = ocsp.load_der_ocsp_request(request)
        t = now()
        revoked = self.status is ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            req.issuer_name_hash,
            req.issuer_key_hash,
            req.serial_number,
            req.hash_algorithm,
            self.status,
            t + self.this_update,
            None if self.next_update is None else t + self.next_update,
            t - HOUR if revoked else None,
            None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.signer)
        if self.include_signer:
            builder = builder.certificates([self.signer])
        return builder.sign(self.key, hashes.SHA256()).public_bytes(Encoding.DER)
