"""Shrinking a pyOpenSSL connection's memory BIOs once its handshake is over.

An OpenSSL memory BIO keeps the capacity of the largest write it ever held: after a handshake,
the one that carried the server's flight (certificate chain, CA list) and the one that carried the
client's (its certificate) hold ~3 KiB between them for as long as the connection lives, although
an idle keep-alive connection holds no data at all. pyOpenSSL offers no call to shrink them, so
both are replaced by new, empty ones (`SSL_set_bio` frees the old pair), through the OpenSSL
binding pyOpenSSL itself uses, and pyOpenSSL's `_into_ssl` / `_from_ssl` (the BIOs its
`bio_write` / `bio_read` use) are pointed at the new pair. Where that binding is not there
(membio.AVAILABLE), nothing is swapped. Measured: 3 KiB less per idle mTLS connection
(docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL

from edgeproxy.tls.membio import AVAILABLE, incoming, outgoing


def _new_pair(lib: Any, ffi: Any) -> tuple[Any, Any] | None:
    fresh_in = lib.BIO_new(lib.BIO_s_mem())
    fresh_out = lib.BIO_new(lib.BIO_s_mem())
    if fresh_in != ffi.NULL and fresh_out != ffi.NULL:
        return fresh_in, fresh_out
    for bio in (fresh_in, fresh_out):  # out of memory: the old pair stays
        if bio != ffi.NULL:
            lib.BIO_free(bio)
    return None


def release_handshake_bios(conn: SSL.Connection) -> bool:
    """Swap `conn`'s memory BIOs for empty ones if both are drained; False (nothing done) when
    either still holds bytes or their level cannot be read."""
    if not AVAILABLE or incoming(conn) != 0 or outgoing(conn) != 0:
        return False
    lib, ffi = SSL._lib, SSL._ffi
    pair = _new_pair(lib, ffi)
    if pair is None:
        return False
    lib.SSL_set_bio(conn._ssl, *pair)
    conn._into_ssl, conn._from_ssl = pair
    return True
