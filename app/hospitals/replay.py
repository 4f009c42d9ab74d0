"""EHR tokens already used: a CDS Hooks token's `jti` is accepted once (CDS Hooks 2.0: the `jti`
identifies the token so it cannot be replayed).

With CIVICRISK_SHARED_STATE the record is the database's (`seen_ehr_tokens`), so a token used on one
worker or replica is refused on every other; while the database cannot be reached, tokens are refused
(503: one that cannot be checked is not accepted). Without it, each process keeps its own record in
memory. Either way a token is remembered by the sha256 of its issuer and `jti`, until it expires.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import anyio.to_thread

from app.platform.storage.repository import Repository

# A process's own record holds at most this many unexpired tokens; past it, the ones closest to
# expiring are forgotten first (they would be refused as expired soon anyway).
MAX_REMEMBERED = 200_000


class SpentTokens:
    def __init__(self, repository: Callable[[], Repository] | None) -> None:
        self.repository = repository
        self._expiries: dict[str, datetime] = {}
        self._by_expiry: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    async def first_use(self, key: str, expires_at: datetime) -> bool:
        """True the first time `key` is presented, False on a replay."""
        if self.repository is not None:
            repository = self.repository
            return await anyio.to_thread.run_sync(lambda: repository().first_use(key, expires_at))
        return self._first_use_here(key, expires_at)

    def _first_use_here(self, key: str, expires_at: datetime) -> bool:
        now = datetime.now(UTC)
        with self._lock:
            while self._by_expiry and (
                self._by_expiry[0][0] < now or len(self._by_expiry) >= MAX_REMEMBERED
            ):
                _, gone = heapq.heappop(self._by_expiry)
                self._expiries.pop(gone, None)
            if key in self._expiries:
                return False
            self._expiries[key] = expires_at
            heapq.heappush(self._by_expiry, (expires_at, key))
            return True
