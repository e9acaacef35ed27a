"""An address a node cannot listen on, said in one line that names its config key."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from edgeproxy.config.model import HostPort


class ListenError(Exception):
    """A listener that could not bind (port in use, address not on this host, no permission):
    `edgeproxy serve` logs it as one "node not started" line and exits 1, no traceback."""


@contextlib.contextmanager
def listening(key: str, address: HostPort) -> Iterator[None]:
    """Turn the OSError of a bind inside the block into a ListenError naming `key`."""
    try:
        yield
    except OSError as error:
        # asyncio's own text repeats the address; the errno's words are enough beside the key.
        words = os.strerror(error.errno) if error.errno else str(error)
        raise ListenError(f'{key} = "{address}": cannot listen there: {words}') from None
