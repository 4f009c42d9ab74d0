"""The server process's memory settings: what start-up loaded kept out of the garbage collector's
sight, and large freed blocks kept in the heap for the next request."""

from __future__ import annotations

import ctypes
import gc
import logging
import platform
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Move everything loaded so far (models, city tables, indexes) out of the garbage collector's
    sight. They live as long as the process, yet each full collection walked all of them: with the
    lead engine loaded, one collection in a 10,000-record batch cost 160-190 ms (measured with
    gc.callbacks). Run after start-up and after each reload (its new models). Frozen objects are
    still freed by reference counting when they are dropped (a reload's old models); reference
    cycles among them would stay, but dropping a committed bundle leaves none (gc.collect() finds
    0 objects after each is dropped)."""
    gc.collect()
    gc.freeze()


_pausing = threading.Lock()
_pauses = 0  # how many threads are inside collector_paused()
_enabled_before = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for a burst of allocation (ranking a daily list).

    Ranking a date builds ~60,000 containers (its rows and their reasons), which trips collections
    whose full passes walk every ranked day the cache holds: on one server process the CPU of a new
    date rose from 232 to 398 ms over 12 dates with the collector on, and stayed at 221-242 ms with it
    held off (bench/README.md). The rows hold no reference cycles, so nothing waits on a collection
    to be freed; what other threads leave meanwhile is collected after. Process-wide and nested
    across threads: the collector resumes when the last burst ends, if it was on before the first."""
    global _pauses, _enabled_before
    with _pausing:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pausing:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()


# glibc's mallopt parameters (malloc.h), and the values set for the server process.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the largest glibc accepts on 64-bit
_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def reuse_freed_memory() -> None:
    """Keep large freed blocks in the process heap for the next request (glibc; a no-op elsewhere).

    A 10,000-record batch allocates its 19 MB body, copies of it and a 7 MB answer. By default glibc
    gives each block that large a fresh mmap and unmaps it when freed, so every batch faulted all
    those pages in again: 13-23% of a batch over HTTP (bench/README.md). With blocks under 32 MB
    taken from the heap, and up to 128 MB of freed memory kept there, the next batch reuses them.
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        accepted = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) and libc.mallopt(
            _M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES
        )
    except (OSError, AttributeError):  # no mallopt in this libc
        accepted = 0
    if not accepted:
        log.info("allocator settings left at their defaults (mallopt refused or missing)")


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim; a no-op elsewhere).

    The master of `civicrisk serve --workers N` runs it just before forking: start-up's freed
    temporaries (the lead engine's build) otherwise stay in its heap, and each worker that allocates
    there copies the page while the master keeps its own copy of memory nobody uses (60-100 MB of
    PSS per server, bench/README.md "Memory")."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # no malloc_trim in this libc
        log.info("free memory not released (malloc_trim missing)")
