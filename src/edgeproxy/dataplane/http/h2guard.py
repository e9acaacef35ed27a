"""HTTP/2 flood budgets: what one client connection may make the edge do for free.

The HTTP/2 denial-of-service advisories (2019: ping, reset, settings, empty frames, data dribble;
2023: rapid reset, CVE-2023-44487) share one shape: frames that cost the server work or output and
produce no request it would answer. Each connection has two token buckets, refilled with time:

* `control`: SETTINGS, PING, PRIORITY, unknown frames, empty DATA frames that do not end a stream,
  WINDOW_UPDATEs that open less than `SLIVER` bytes, and DATA frames the edge must send in slivers
  because the client keeps its window tiny;
* `resets`: streams the client opened and cancelled (RST_STREAM) before their response ended.

A connection that runs a bucket dry gets GOAWAY ENHANCE_YOUR_CALM and is closed; other
connections are not touched. The bursts are far above what browsers, curl or gRPC clients send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

CONTROL_BURST: Final = 1000  # control frames a connection may send at once
CONTROL_RATE: Final = 200.0  # ... and per second after that
RESET_BURST: Final = 200  # streams cancelled by the client at once (2 x max_concurrent_streams)
RESET_RATE: Final = 50.0  # ... and per second after that
SLIVER: Final = 256  # bytes: a DATA frame smaller than this, with more to send, is a sliver


class Budget:
    """A token bucket on the loop clock: `spend` is False once the bucket is empty."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, burst: int, rate: float, clock: Callable[[], float]) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def spend(self, count: int = 1) -> bool:
        tokens = self._tokens - count
        if tokens < 0:  # refill only when short: most frames cost a subtraction
            now = self._clock()
            tokens = min(self._burst, tokens + (now - self._stamp) * self._rate)
            self._stamp = now
        self._tokens = tokens
        return tokens >= 0
