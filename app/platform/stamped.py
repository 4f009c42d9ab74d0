"""A table every process keeps in memory and reads again when the database says it changed.

Partner keys and OAuth clients both work this way: a request costs a dictionary probe, and every
second each process reads a cheap stamp (row count, latest change) and the rows only when it moved,
so a revocation made anywhere reaches every worker and replica within about a second. While the
database cannot be read, what was last read stands for a grace period after the last successful
read; past it, `current()` refuses (503): a credential that cannot be checked is not let in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from app.platform.errors import KeyStoreUnavailable
from app.platform.storage.repository import DatabaseUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class StampedTable(Generic[T]):
    """`read_rows()` as of the last `read_stamp()` that changed, vouched for `grace_seconds`."""

    def __init__(
        self,
        what: str,
        read_stamp: Callable[[], Any],
        read_rows: Callable[[], T],
        empty: T,
        nothing_stored: Callable[[], bool],
        grace_seconds: float,
        refused: str,
        clock: Callable[[], float] = time.monotonic,
        before_read: Callable[[], None] | None = None,
        on_change: Callable[[T], None] | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.what = what  # "partner key", "OAuth client": how the logs name the store
        self.read_stamp = read_stamp
        self.read_rows = read_rows
        self.empty = empty
        self.nothing_stored = nothing_stored
        self.grace_seconds = grace_seconds
        self.refused = refused  # the 503's message once the grace period is over
        self.clock = clock
        self.before_read = before_read
        self.on_change = on_change
        self.log = logger  # the owner's: its operators filter on it
        self.rows: T = empty
        self.read_at: float | None = None  # clock time of the last successful read
        self.down: str | None = None  # why reading fails, while it fails
        self._stamp: Any = None
        self._attempted = False
        self._closed_logged = False
        self._lock = threading.Lock()

    async def follow(self, interval: float) -> None:
        """Read again every `interval` seconds until cancelled."""
        while True:
            await anyio.sleep(interval)
            await anyio.to_thread.run_sync(self.refresh)

    def refresh(self) -> bool:
        """Read the rows if the stamp changed; True when they did. On failure the last rows stand."""
        with self._lock:
            self._attempted = True
            try:
                changed = self._read()
            except Exception as error:  # whatever stops the read, the last rows stand for the grace period
                self._failed(error)
                return False
            if self.down is not None:
                self.log.warning(f"{self.what} store reachable again; re-read")
            self.down, self._closed_logged = None, False
            self.read_at = self.clock()
            return changed

    def _read(self) -> bool:
        if self.before_read is not None:
            self.before_read()
        if self.nothing_stored():
            changed = self._stamp is not None
            self.rows, self._stamp = self.empty, None
            if changed and self.on_change is not None:
                self.on_change(self.rows)
            return changed
        stamp = self.read_stamp()
        if stamp == self._stamp:
            return False
        self.rows, self._stamp = self.read_rows(), stamp
        if self.on_change is not None:
            self.on_change(self.rows)
        return True

    def _failed(self, error: Exception) -> None:
        reason = str(error) if isinstance(error, DatabaseUnavailable) else type(error).__name__
        reason = (reason.strip().splitlines() or ["unknown"])[0][:300]
        if self.down is None:  # once per outage, not once per read or request
            self.log.warning(
                f"{self.what} store unreachable; what was last read stays valid for %s s after the last read",
                self.grace_seconds,
                extra={"error": reason},
            )
        self.down = reason
        if not self._closed_logged and not self.vouched_for():
            self.log.error(f"{self.what}s refused (503) until the store is reachable again")
            self._closed_logged = True

    def vouched_for(self) -> bool:
        read_at = self.read_at
        return read_at is not None and self.clock() - read_at <= self.grace_seconds

    def current(self) -> T:
        """The rows, while the last read is recent enough to vouch for them; else 503."""
        if not self._attempted:  # an app used without its lifespan (start-up reads first)
            self.refresh()
        if not self.vouched_for():
            raise KeyStoreUnavailable(self.refused)
        return self.rows
