"""A bounded pool for daily list computations: in the calling thread, or in a child process forked
for each (CIVICRISK_DAILY_CHILD_PROCESS).

Ranking a new date is ~0.5 s of pandas work, much of it holding the GIL. A child forked per
computation sees the server's current city data and models as they are (copy-on-write, nothing
loaded twice), runs at a lower CPU priority, sends its rows back as JSON and exits, so its memory is
returned whole; but the fork and the copy-on-write faults that follow cost the server more than the
GIL did on the 2-core machine measured (bench/README.md), so it is not the default.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from app.inspections.errors import ListComputationFailed, ListsBusy

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
CHILD_NICENESS = 5  # below the server process: on a busy machine scoring gets the CPU first
_ROWS, _ERROR = b"R", b"E"


class ListPool:
    """At most `concurrency` computations at once; a caller waits at most `max_wait_seconds` for a
    slot, then gets `ListsBusy` (503 with Retry-After)."""

    def __init__(self, concurrency: int, max_wait_seconds: float, child_process: bool = False) -> None:
        self.concurrency = concurrency
        self.max_wait_seconds = max_wait_seconds
        self.child_process = child_process
        self.computations = 0  # started so far (tests count them; every one is a real computation)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        self._recent_seconds = 1.0  # a computation's duration, smoothed: for Retry-After

    def run(self, compute: Callable[[], Rows]) -> Rows:
        """`compute()`'s rows, computed in a child process (or here, without `child_process`)."""
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
            rows = _in_child(compute) if self.child_process else compute()
            with self._lock:
                self._recent_seconds = 0.7 * self._recent_seconds + 0.3 * (time.monotonic() - started)
            return rows
        finally:
            self._slots.release()

    def retry_after(self) -> int:
        """Seconds until the computations queued now have likely run (at least 1)."""
        with self._lock:
            queued = self._waiting + self.concurrency
            estimate = self._recent_seconds * queued / self.concurrency
        return max(1, min(120, math.ceil(estimate)))


def _in_child(compute: Callable[[], Rows]) -> Rows:
    # Forked, not spawned: the child needs the server's loaded data and models, and `compute` is a
    # closure over them. Only the forking thread exists in the child, and it takes no lock there.
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(compute, sender), name="daily-list", daemon=True)
    child.start()
    sender.close()
    try:
        payload = receiver.recv_bytes()
    except EOFError:
        payload = None
    finally:
        receiver.close()
        child.join()
    if payload is None:
        raise ListComputationFailed(
            f"the list computation process ended without a list (exit code {child.exitcode})"
        )
    if payload[:1] == _ERROR:
        raise ListComputationFailed(f"the list computation failed: {payload[1:].decode()}")
    rows: Rows = orjson.loads(payload[1:])
    return rows


def _child_main(compute: Callable[[], Rows], sender: Connection) -> None:
    # Every object inherited stays out of the collector's sight: a collection would write to each
    # one's header, copying the server's whole heap into this short-lived process page by page.
    gc.freeze()
    os.nice(CHILD_NICENESS)
    try:
        payload = _ROWS + orjson.dumps(compute())
    except BaseException as error:  # reported to the parent, which answers the request
        payload = _ERROR + f"{type(error).__name__}: {error}".encode()
    sender.send_bytes(payload)
    sender.close()
