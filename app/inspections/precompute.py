"""Tomorrow's default lists computed ahead, in the background, so the first inspector of the morning
does not wait: at start-up, after a reload and after new outcomes (each changes the lists)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ListsAhead:
    """Runs `precompute` in one background thread whenever asked; asks made while it runs coalesce
    into one more run, and runs start at least `min_interval` seconds apart. Inspectors post outcomes
    all day, each changing tomorrow's lists: in the soak (bench/soak.py, several posts a second) every
    worker re-ranked tomorrow back to back, a core's worth of CPU taken from the requests."""

    def __init__(
        self, precompute: Callable[[], None], enabled: bool = True, min_interval: float = 0.0
    ) -> None:
        self.precompute = precompute
        self.enabled = enabled
        self.min_interval = min_interval
        self.runs = 0  # finished runs (tests wait for them)
        self._asked = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def soon(self) -> None:
        """Ask for a run (starting the thread on first use); returns at once."""
        if not self.enabled or self._stopping.is_set():
            return
        with self._idle:
            if self._thread is None:
                # Not a daemon: a process exiting mid-run waits for it (seconds) rather than
                # finalising the interpreter under a thread inside pandas (see app/main.py's warm-up).
                self._thread = threading.Thread(target=self._loop, name="daily-lists-ahead")
                self._thread.start()
        self._asked.set()

    def stop(self) -> None:
        """No new runs (a run in progress finishes)."""
        self._stopping.set()
        self._asked.set()

    def wait_for_runs(self, runs: int, timeout: float) -> bool:
        """True once `runs` runs have finished (for tests and benchmarks)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.runs >= runs, timeout)

    def _loop(self) -> None:
        last_start: float | None = None
        while True:
            self._asked.wait()
            if last_start is not None:  # the asks of the interval's rest coalesce into this run
                self._stopping.wait(max(0.0, last_start + self.min_interval - time.monotonic()))
            if self._stopping.is_set():
                return
            self._asked.clear()
            last_start = time.monotonic()
            try:
                self.precompute()
            except Exception as error:  # logged; the lists are then computed on first request
                reason = f"{type(error).__name__}: {error}"
                log.warning("daily lists not computed ahead", extra={"error": reason})
            with self._idle:
                self.runs += 1
                self._idle.notify_all()
