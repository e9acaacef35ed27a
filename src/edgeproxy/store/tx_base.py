"""The seam every query mixin shares: one transaction's connection."""

from __future__ import annotations

from edgeproxy.store.db import Db


class TxBase:
    """One transaction's view of the store. Built by a back end around its connection."""

    def __init__(self, db: Db) -> None:
        self._db = db
