"""How many bytes wait in an `SSL.Connection`'s memory BIOs, asked without an exception.

pyOpenSSL answers "nothing there" only by raising `WantReadError` from `bio_read` (or `recv`), and
that path makes three calls into OpenSSL, each releasing and retaking the GIL, then builds and
unwinds an exception: the engine met it twice per keep-alive request (the `recv` that finds no
second record, the drain that finds nothing to send), about as much CPU as the request's real TLS
work. pyOpenSSL has no public call for the BIOs' fill level, so this reads it through the OpenSSL
binding pyOpenSSL itself uses (`BIO_get_mem_data`, a `BIO_ctrl` that only reports the length).

Where that binding is not there (another pyOpenSSL or cryptography build), `AVAILABLE` is False and
both functions answer `UNKNOWN`: the engine then asks OpenSSL the old way, with the same outcome.
"""

from __future__ import annotations

from typing import Any, Final

from OpenSSL import SSL

UNKNOWN: Final = -1


def _binding() -> tuple[Any, Any] | None:
    lib = getattr(SSL, "_lib", None)
    ffi = getattr(SSL, "_ffi", None)
    if lib is None or ffi is None or not hasattr(lib, "BIO_get_mem_data"):
        return None
    probe = SSL.Connection(SSL.Context(SSL.TLS_SERVER_METHOD), None)
    if not hasattr(probe, "_into_ssl") or not hasattr(probe, "_from_ssl"):
        return None
    return lib, ffi


_found = _binding()
AVAILABLE: Final = _found is not None
if _found is not None:
    _get_mem_data = _found[0].BIO_get_mem_data
    _NULL = _found[1].NULL

    def incoming(conn: SSL.Connection) -> int:
        """Ciphertext from the peer that OpenSSL has not read yet."""
        return int(_get_mem_data(conn._into_ssl, _NULL))

    def outgoing(conn: SSL.Connection) -> int:
        """Ciphertext OpenSSL wrote for the peer, not drained yet."""
        return int(_get_mem_data(conn._from_ssl, _NULL))

else:

    def incoming(conn: SSL.Connection) -> int:
        return UNKNOWN

    def outgoing(conn: SSL.Connection) -> int:
        return UNKNOWN
