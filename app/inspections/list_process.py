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

Requests are pipelined: the server may send the next request while the child ranks one, so the
child starts it the moment it has sent its answer, never waiting for a busy server to wake the
thread whose turn is next (at 12 dates in a row that wait was ~35 ms a date, a seventh of ranking
one). Answers come back in the order the requests went out; each caller reads its own in turn. A
ranked day (~9 MB for Chicago) goes back in a memfd whose descriptor crosses the socket, not through
the socket's ~200 KB buffer: a busy server took up to 55 ms to drain it chunk by chunk, with the
child blocked meanwhile.
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
from multiprocessing import reduction
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from threadpoolctl import threadpool_limits

from app.inspections.errors import ListComputationFailed
from app.inspections.ranked_rows import RankedRows

log = logging.getLogger(__name__)

CHILD_NICENESS = 5  # below the server process: on a busy machine scoring gets the CPU first
_ROWS, _ERROR, _SHARED = b"R", b"E", b"S"
SHARED_MIN_BYTES = 1 << 16  # answers this large go back in a memfd rather than through the socket


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


class _Channel:
    """One forked child and the server's end of its socket. Requests go out in order (`send`, under
    the ranker's lock) and answers come back in that order: the caller of the n-th request reads
    the n-th answer (`answer`), after the callers before it have read theirs.

    The socket is closed only while no one reads it (`_end_if_due`): a socket closed while another
    thread reads it could hand that thread's next read to a descriptor opened meanwhile under the
    same number (the next child's socket)."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.parent_pid = os.getpid()  # the process that forked the child
        self._turn = threading.Condition()
        self._sent = 0  # requests sent so far: the next one's ticket
        self._read = 0  # answers read so far: the ticket whose turn it is
        self._reading = False  # a caller is reading its answer now
        self._broken = False  # the child ended (or its socket failed): no more answers
        self._retired = False  # no more requests: ended once every sent request is answered
        self._closed = False

    def send(self, payload: bytes) -> int:
        """Send one request (the ranker's lock held: tickets follow the order on the socket)."""
        ticket = self._sent
        self.connection.send_bytes(payload)
        self._sent += 1
        return ticket

    def answer(self, ticket: int) -> bytes:
        """The answer to request `ticket`, once the answers before it were read; EOFError when the
        child ended before sending it."""
        with self._turn:
            while self._read != ticket and not self._broken:
                self._turn.wait()
            if self._broken:
                raise EOFError("the list process ended")
            self._reading = True
        try:
            payload = _received(self.connection)
        except (EOFError, OSError):
            with self._turn:
                self._reading, self._broken = False, True
                self._turn.notify_all()
            self._end_if_due()
            raise
        with self._turn:
            self._reading = False
            self._read += 1
            self._turn.notify_all()
        self._end_if_due()
        return payload

    def retire(self) -> None:
        """No more requests: ended now, or by the reader of the last answer still on its way."""
        with self._turn:
            self._retired = True
        self._end_if_due()

    def fail(self) -> None:
        """The child or its socket failed: callers still waiting for their turn get EOFError."""
        with self._turn:
            self._broken = True
            self._turn.notify_all()
        self._end_if_due()

    def _end_if_due(self) -> None:
        with self._turn:
            answered = self._retired and self._read == self._sent
            due = not self._closed and not self._reading and (self._broken or answered)
            if due:
                self._closed = self._broken = True
                self._turn.notify_all()
        if not due:
            return
        self.connection.close()  # the child reads end-of-file and exits (once no copy is open)
        # A process forked from the child's parent (a server's worker) cannot wait for the child,
        # and need not: closing its copy of the socket was its part.
        if self.parent_pid == os.getpid():
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()

    @property
    def alive(self) -> bool:
        return not self._broken and self.parent_pid == os.getpid() and self.process.is_alive()


class RankerProcess:
    """One child process ranking dates on request; forked on first use and again after it dies.

    `before_fork` runs here just before (what the child would otherwise build for itself, built once
    and shared); `after_fork` runs first in the child (fresh locks and database connections: neither
    survives a fork); `rank` then answers each request there. Several threads may have requests in
    flight at once (the pool sends the next one ahead); the child ranks them one at a time."""

    def __init__(
        self,
        rank: RankInChild,
        after_fork: Callable[[], None],
        before_fork: Callable[[RankRequest], None] | None = None,
    ) -> None:
        self._rank = rank
        self._after_fork = after_fork
        self._before_fork = before_fork
        self._channel: _Channel | None = None
        self._lock = threading.Lock()  # forks, and the order of requests on the socket
        self.forks = 0  # children started so far (tests and the log read it)

    @property
    def pid(self) -> int | None:
        """The child's, while it runs; None in a process forked since (a server's worker), which
        forks a child of its own."""
        channel = self._channel
        return channel.process.pid if channel is not None and channel.alive else None

    def rank(self, request: RankRequest) -> RankedRows | Stale:
        """The rows, or why the child could not match the request's model or data."""
        answer = self.rank_encoded(request)
        return answer if isinstance(answer, Stale) else RankedRows.decode(answer)

    def rank_encoded(self, request: RankRequest) -> bytes | Stale:
        """The rows as the child sent them (`RankedRows.decode` reads them), or why it could not
        match the request's model or data: the caller may let the child rank its next date while
        it decodes these."""
        answer = self._exchange(request, with_recorded=False)
        if answer is Stale.DATA and request.recorded is not None:
            # The child lacks the server's build of the city's data (outcomes posted since the
            # fork): it builds it from the outcomes sent along, never from the database.
            answer = self._exchange(request, with_recorded=True)
        return answer

    def _exchange(self, request: RankRequest, with_recorded: bool) -> bytes | Stale:
        for attempt in (1, 2):  # a child that died (killed, out of memory) is forked again once
            channel: _Channel | None = None
            try:
                with self._lock:
                    channel = self._running(request)
                    ticket = channel.send(request.encode(with_recorded))
                payload = channel.answer(ticket)
            except (EOFError, OSError) as error:
                if channel is not None:
                    self._drop(channel)
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
        """No more requests to the child: it ends once the answers on their way are read."""
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.retire()

    def _drop(self, channel: _Channel) -> None:
        with self._lock:
            if self._channel is channel:
                self._channel = None
        channel.fail()

    def _running(self, request: RankRequest) -> _Channel:
        channel = self._channel
        if channel is not None and channel.alive:
            return channel
        self._channel = None
        if channel is not None:
            channel.retire()
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
        self._channel = _Channel(process, parent_end)
        self.forks += 1
        log.info("daily list process started", extra={"pid": process.pid})
        return self._channel


def _sent_back(connection: Connection, payload: bytes) -> None:
    """In the child: `payload` to the server, a large one in a memfd (Linux) whose descriptor
    crosses the socket: written at once, where the socket takes ~200 KB at a time."""
    memfd_create = getattr(os, "memfd_create", None)
    if len(payload) < SHARED_MIN_BYTES or memfd_create is None:
        connection.send_bytes(payload)
        return
    descriptor = memfd_create("civicrisk-ranked-day", os.MFD_CLOEXEC)
    try:
        with open(descriptor, "wb", buffering=0, closefd=False) as file:
            written = 0
            while written < len(payload):  # a raw write may take part of it
                written += file.write(memoryview(payload)[written:]) or 0
        connection.send_bytes(_SHARED)
        reduction.send_handle(connection, descriptor, os.getppid())
    finally:
        os.close(descriptor)  # the server holds its own copy once it was sent


def _received(connection: Connection) -> bytes:
    """In the server: the child's next answer, however it was sent."""
    payload = connection.recv_bytes()
    if payload != _SHARED:
        return payload
    try:
        descriptor = reduction.recv_handle(connection)
    except RuntimeError as error:  # not the one descriptor the child sends: a broken exchange
        raise EOFError(f"the list process sent no answer ({error})") from error
    with open(descriptor, "rb", buffering=0) as file:  # closes the descriptor: the memory is freed
        file.seek(0)
        return file.read()


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
        _sent_back(connection, payload)
