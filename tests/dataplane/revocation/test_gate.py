"""How the answers for the certificates of one chain combine (gate.py): the worst wins, and the
handshake waits for every lookup."""

from __future__ import annotations

import asyncio

import pytest

from edgeproxy.dataplane.revocation.gate import all_settled, worst
from edgeproxy.revocation.answer import Status

G, R, U, X = Status.GOOD, Status.REVOKED, Status.UNKNOWN, Status.UNAVAILABLE


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [([G], G), ([G, G], G), ([G, R], R), ([X, R], R), ([G, U], U), ([X, U], X), ([U, X], U)],
)
def test_worst_of_a_chain(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected


async def test_all_settled_waits_for_every_lookup() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    combined = all_settled([G], [first, second])
    first.set_result(R)
    await asyncio.sleep(0)
    assert not combined.done()  # settles when all settle, not on the first revoked
    second.set_result(G)
    assert await combined is R
