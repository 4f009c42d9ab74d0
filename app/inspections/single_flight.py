"""Single-flight: callers asking for the same key at once share one computation's result."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """The first caller of a key computes; callers arriving while it does wait for its result (or its
    exception). Nothing is kept afterwards: caching is the caller's business."""

    def __init__(self) -> None:
        self._running: dict[Hashable, Future[T]] = {}
        self._lock = threading.Lock()

    def run(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            running = self._running.get(key)
            leader = running is None
            if running is None:
                running = self._running[key] = Future()
        if not leader:
            return running.result()
        try:
            result = compute()
        except BaseException as error:
            running.set_exception(error)
            raise
        else:
            running.set_result(result)
            return result
        finally:
            with self._lock:
                del self._running[key]
