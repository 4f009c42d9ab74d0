"""A bounded pool for daily list computations: in the calling thread, or in long-lived child
processes (CIVICRISK_DAILY_CHILD_PROCESS; app/inspections/list_process.py), one per slot, each with
the next request sent ahead (`PIPELINE_DEPTH`) so that it starts ranking the moment it is done."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from app.inspections.errors import ListsBusy
from app.inspections.list_process import RankerProcess, RankRequest, Stale
from app.inspections.ranked_rows import RankedRows

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 2  # requests in flight per list process: the one it ranks and the next, waiting


class ListPool:
    """At most `concurrency` computations at once; a caller waits at most `max_wait_seconds` for a
    slot, then gets `ListsBusy` (503 with Retry-After). With list processes, each also holds one
    request sent ahead of the one it ranks: a slot then means a place in a process's queue (a
    computation in the calling thread, rare then, takes one too)."""

    def __init__(
        self, concurrency: int, max_wait_seconds: float, rankers: list[RankerProcess] | None = None
    ) -> None:
        self.concurrency = concurrency
        self.max_wait_seconds = max_wait_seconds
        self.rankers = rankers  # one per slot, or None: computed in the calling thread
        self._in_flight = dict.fromkeys(range(len(rankers or ())), 0)  # requests per ranker
        self.computations = 0  # started so far (tests count them; every one is a real computation)
        self.slot_count = concurrency * (PIPELINE_DEPTH if rankers else 1)
        self._slots = threading.BoundedSemaphore(self.slot_count)
        self._lock = threading.Lock()
        self._waiting = 0
        self._recent_seconds = 1.0  # time a slot is held, smoothed: for Retry-After

    def run(self, compute: Callable[[], RankedRows], request: RankRequest | None = None) -> RankedRows:
        """The request's rows: from a list process, or `compute()` here (without a request or list
        processes, or when the process could not match the request's model or data)."""
        with self._lock:
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.max_wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise ListsBusy(
                f"every daily list computation slot ({self.concurrency}) stayed busy for "
                f"{self.max_wait_seconds:g} s; try again shortly",
                self.retry_after(),
            )
        try:
            with self._lock:
                self.computations += 1
            started = time.monotonic()
            if self.rankers is None or request is None:
                rows: RankedRows | bytes = compute()
            else:
                rows = self._in_process(compute, request)
            with self._lock:
                self._recent_seconds = 0.7 * self._recent_seconds + 0.3 * (time.monotonic() - started)
        finally:
            self._slots.release()
        # Decoded after the slot is free: the list process ranks the next date meanwhile.
        return RankedRows.decode(rows) if isinstance(rows, bytes) else rows

    def _in_process(self, compute: Callable[[], RankedRows], request: RankRequest) -> RankedRows | bytes:
        assert self.rankers is not None
        with self._lock:  # a slot is held, so a process has room in its queue
            chosen = min(self._in_flight, key=self._in_flight.__getitem__)
            self._in_flight[chosen] += 1
        ranker = self.rankers[chosen]
        try:
            rows = ranker.rank_encoded(request)
            if rows is Stale.MODEL:  # forked before the server loaded this model: once more, anew
                ranker.close()
                rows = ranker.rank_encoded(request)
        finally:
            with self._lock:
                self._in_flight[chosen] -= 1
        if not isinstance(rows, Stale):
            return rows
        # Data the process could not match even with the outcomes sent (the server's data was not
        # its latest build): a new fork would not have it either.
        log.warning(
            "daily list ranked in the server: its process could not match the model or the data",
            extra={"city": request.city, "date": request.list_date.isoformat(), "stale": rows.name},
        )
        return compute()

    def close(self) -> None:
        """Stop the list processes (they are forked again if a list is asked for afterwards)."""
        for ranker in self.rankers or ():
            ranker.close()

    def retry_after(self) -> int:
        """Seconds until the computations queued now have likely run (at least 1)."""
        with self._lock:
            # Under load a slot is held for as many computations as a process's queue holds.
            queued = self._waiting + self.slot_count
            estimate = self._recent_seconds * queued / self.slot_count
        return max(1, min(120, math.ceil(estimate)))
