"""A long-lived child process that ranks daily lists, so the server's event loop keeps the GIL.

Ranking a new date is a few hundred milliseconds of pandas and k-d tree work, most of it holding
the GIL: in a thread of the server it holds up every scoring request for as long. The child is
forked from the server the first time a list needs ranking, so it starts with the server's loaded
models and city data (shared copy-on-write pages, nothing read twice), runs at a lower CPU priority
(on a busy machine scoring gets the CPU first) and ranks one date at a time, sending the ranked
day's columns back (app/inspections/ranked_rows.py).

It answers "stale" rather than rank with other inputs than the server's: the request names the model
by fingerprint and the city's data by revision (and the recorded outcomes it was built from). A
child lacking that build of the data (outcomes were posted since the fork) gets the outcomes from
the server and builds it. It never opens the database: another of the server's threads may have held
one of the database library's own locks when it forked (SQLite's allocator mutex, say), and the
child would wait on that lock for ever. A model loaded after the fork needs a new child, which the
pool forks (app/inspections/list_pool.py), ranking in the server what that child cannot match
either. A child that dies is forked again. Right after the fork the child lets go of the server's
sockets and pipes (`_let_go_of_inherited_streams`).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from threadpoolctl import threadpool_limits

from app.inspections.errors import ListComputationFailed
from app.inspections.ranked_rows import RankedRows

log = logging.getLogger(__name__)

CHILD_NICENESS = 5  # below the server process: on a busy machine scoring gets the CPU first
_ROWS, _ERROR = b"R", b"E"


class Stale(Enum):
    """Why a list process could not rank a request as the server would have."""

    MODEL = b"M"  # loaded in the server after the fork: a new fork has it
    DATA = b"D"  # the recorded outcomes the server ranks with cannot be read back (posted meanwhile)


@dataclass(frozen=True)
class RankRequest:
    """One date of a city to rank, with the model and data the server ranks it with."""

    city: str
    list_date: date
    model_fingerprint: str
    data_revision: tuple[int, str]
    # The recorded outcomes the server's data was built from (count, latest receipt), when known,
    # and those outcomes as the server read them: sent only to a child that lacks that build.
    outcomes: tuple[int, datetime | None] | None = None
    recorded: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    def encode(self, with_recorded: bool = False) -> bytes:
        """Pickled (between a server and its own fork): dates and receipts come back as they were."""
        sent = self if with_recorded else replace(self, recorded=None)
        return pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def decode(cls, payload: bytes) -> RankRequest:
        request = pickle.loads(payload)  # noqa: S301 (our own server's bytes)
        assert isinstance(request, cls)
        return request


# In the child: the request's rows, or why its model or data cannot be matched.
RankInChild = Callable[[RankRequest], RankedRows | Stale]


class RankerProcess:
    """One child process ranking dates on request; forked on first use and again after it dies.

    `before_fork` runs here just before (what the child would otherwise build for itself, built once
    and shared); `after_fork` runs first in the child (fresh locks and database connections: neither
    survives a fork); `rank` then answers each request there."""

    def __init__(
        self,
        rank: RankInChild,
        after_fork: Callable[[], None],
        before_fork: Callable[[RankRequest], None] | None = None,
    ) -> None:
        self._rank = rank
        self._after_fork = after_fork
        self._before_fork = before_fork
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # one request at a time on the pipe
        self._parent_pid: int | None = None  # the process that forked the child
        self.forks = 0  # children started so far (tests and the log read it)

    @property
    def pid(self) -> int | None:
        """The child's, while it runs; None in a process forked since (a server's worker), which
        forks a child of its own."""
        process = self._process
        if process is None or self._parent_pid != os.getpid() or not process.is_alive():
            return None
        return process.pid

    def rank(self, request: RankRequest) -> RankedRows | Stale:
        """The rows, or why the child could not match the request's model or data."""
        answer = self.rank_encoded(request)
        return answer if isinstance(answer, Stale) else RankedRows.decode(answer)

    def rank_encoded(self, request: RankRequest) -> bytes | Stale:
        """The rows as the child sent them (`RankedRows.decode` reads them), or why it could not
        match the request's model or data: the caller may let the child rank its next date while
        it decodes these."""
        with self._lock:
            answer = self._exchange(request, with_recorded=False)
            if answer is Stale.DATA and request.recorded is not None:
                # The child lacks the server's build of the city's data (outcomes posted since the
                # fork): it builds it from the outcomes sent along, never from the database.
                answer = self._exchange(request, with_recorded=True)
            return answer

    def _exchange(self, request: RankRequest, with_recorded: bool) -> bytes | Stale:
        for attempt in (1, 2):  # a child that died (killed, out of memory) is forked again once
            connection = self._running(request)
            try:
                connection.send_bytes(request.encode(with_recorded))
                payload = connection.recv_bytes()
            except (EOFError, OSError) as error:
                self._forget()
                if attempt == 2:
                    raise ListComputationFailed(
                        f"the list process ended without a list ({type(error).__name__})"
                    ) from error
                log.warning("daily list process ended; starting another")
                continue
            if payload[:1] == _ERROR:
                raise ListComputationFailed(f"the list computation failed: {payload[1:].decode()}")
            if payload[:1] in (Stale.MODEL.value, Stale.DATA.value):
                return Stale(payload[:1])
            return payload[1:]
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._forget()

    def _running(self, request: RankRequest) -> Connection:
        if self._connection is not None and self.pid is not None:
            return self._connection
        self._forget()
        if self._before_fork is not None:
            self._before_fork(request)
        # Forked, not spawned: the child needs the server's loaded models and data, and a spawned
        # interpreter would read them all again.
        context = multiprocessing.get_context("fork")
        parent_end, child_end = context.Pipe(duplex=True)
        process = context.Process(
            target=_child_main,
            args=(self._rank, self._after_fork, child_end, parent_end),
            name="daily-list-ranker",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._connection, self._parent_pid = process, parent_end, os.getpid()
        self.forks += 1
        log.info("daily list process started", extra={"pid": process.pid})
        return parent_end

    def _forget(self) -> None:
        if self._connection is not None:
            self._connection.close()  # the child reads end-of-file and exits (once no copy is open)
        # A process forked from the child's parent (a server's worker) cannot wait for the child,
        # and need not: closing its copy of the pipe was its part.
        if self._process is not None and self._parent_pid == os.getpid():
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._process, self._connection = None, None


def _let_go_of_inherited_streams(keep: int) -> None:
    """Point every socket and pipe the fork copied (but `keep` and stdio) at /dev/null.

    A forked child holds a copy of each descriptor its server had open: clients' connections, the
    listening socket, database connections, pipes to other programs. While the copy is open, the
    server's close does not close: a keep-alive connection the server drops stays open for its
    client, who may send the next request into it and wait; a program reading a pipe to its end
    never sees the end. dup2, not close: the numbers stay taken, so an inherited object's finalizer
    (a database connection saying goodbye, say) writes to /dev/null, never to a descriptor this
    process opened since. Linux only (/proc); elsewhere nothing is done."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for descriptor in descriptors:
            if descriptor <= 2 or descriptor in (keep, null):
                continue
            try:
                mode = os.fstat(descriptor).st_mode
            except OSError:  # the listing's own descriptor, closed since
                continue
            if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                os.dup2(null, descriptor)
    finally:
        os.close(null)


def _child_main(
    rank: RankInChild, after_fork: Callable[[], None], connection: Connection, parent_end: Connection
) -> None:
    parent_end.close()  # else the child's own copy would keep the pipe open after the server exits
    _let_go_of_inherited_streams(keep=connection.fileno())
    # Every object inherited stays out of the collector's sight: a collection would write to each
    # one's header, copying the server's heap into this process page by page.
    gc.freeze()
    os.nice(CHILD_NICENESS)
    # One thread for numeric libraries: the child is one of the machine's processes, and OpenMP's
    # thread pool, inherited from the server without its threads, must not be waited on.
    threadpool_limits(1)
    after_fork()
    while True:
        try:
            request = RankRequest.decode(connection.recv_bytes())
        except (EOFError, OSError):  # the server closed the pipe or exited
            return
        try:
            rows = rank(request)
            payload = rows.value if isinstance(rows, Stale) else _ROWS + rows.encode()
        except Exception as error:  # reported to the server, which answers the request
            payload = _ERROR + f"{type(error).__name__}: {error}".encode()
        connection.send_bytes(payload)
