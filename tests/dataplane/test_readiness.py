"""/readyz's one shape (dataplane/status.py `Readiness`), for every kind of node."""

from __future__ import annotations

from edgeproxy.dataplane.status import Readiness, WorkerStatus


def test_a_node_without_the_edge_role_says_only_ready_or_why_not() -> None:
    assert Readiness(ready=True).as_json() == {"ready": True, "failClosed": []}
    down = Readiness(ready=False, reasons=("store unreachable: gone",))
    assert down.as_json() == {
        "ready": False,
        "failClosed": [],
        "reasons": ["store unreachable: gone"],
    }
    assert Readiness(ready=False).as_json()["reasons"] == ["not ready"]  # never unexplained


def test_an_edge_node_on_its_snapshot_is_ready_and_says_so() -> None:
    readiness = Readiness(
        ready=True,
        fail_closed=("partner-api",),
        reasons=("serving the last applied trust state from the local snapshot",),
        store_reachable=False,
    )
    assert readiness.as_json() == {
        "ready": True,
        "failClosed": ["partner-api"],
        "storeReachable": False,
        "reasons": ["serving the last applied trust state from the local snapshot"],
    }


def test_a_worker_pool_lists_its_workers() -> None:
    row = WorkerStatus(1, "edge-1/w1", 42, False, None, 0, None)
    body = Readiness(
        ready=False, reasons=("worker 1 is starting",), store_reachable=True, workers=(row,)
    ).as_json()
    assert body["workers"] == [row.as_json()]
    assert body["reasons"] == ["worker 1 is starting"]
