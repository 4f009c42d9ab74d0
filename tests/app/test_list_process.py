"""Daily lists ranked in a long-lived list process (CIVICRISK_DAILY_CHILD_PROCESS): ranked outside
the server process, one process for many dates, forked again when it dies, never ranking with
another model or other data than the server's, and stopped with the app."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from app_helpers import MODELS_DIR

from app.inspections import list_process
from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyOptions, DailyQuery, _data_revision
from app.inspections.list_process import RankRequest, Stale
from app.inspections.ranked_rows import RankedRows
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import Repository
from training.inspections.features import neighbourhood


@pytest.fixture
def lists(tmp_path: Path) -> Iterator[DailyLists]:
    registry = ModelRegistry(MODELS_DIR, None)
    registry.reload()
    repository = Repository.open(f"sqlite:///{tmp_path / 'lists.sqlite3'}")
    options = DailyOptions(child_process=True, precompute=False)
    daily = DailyLists(CityStore(Settings().data_dir), registry, lambda: repository, options)
    yield daily
    daily.close()


def test_dates_are_ranked_in_one_other_process(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    for day in ("2014-07-01", "2014-07-02", "2014-07-03"):
        issued = lists.issue(DailyQuery("chicago", date.fromisoformat(day), 10))
        assert len(issued.rows) == 10
    assert ranker.forks == 1 and ranker.pid not in (None, os.getpid())
    assert lists.pool.computations == 3


def test_a_list_process_that_died_is_forked_again(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    lists.issue(DailyQuery("chicago", date(2014, 7, 1), 10))
    first = ranker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    issued = lists.issue(DailyQuery("chicago", date(2014, 7, 2), 10))
    assert len(issued.rows) == 10
    assert ranker.forks == 2 and ranker.pid not in (None, first)


def test_the_process_refuses_a_model_or_data_it_cannot_match(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    data = lists.city_data("chicago")
    model = lists.model_for("chicago")
    version = lists._versions.built_from("chicago", data)
    assert version is not None
    revision = _data_revision(data, date(2014, 7, 1))
    good = RankRequest("chicago", date(2014, 7, 1), model.fingerprint, revision, version.revision)
    rows = ranker.rank(good)
    assert rows is not None and list(rows) == list(lists._rank(data, model, date(2014, 7, 1)))
    other_model = RankRequest("chicago", date(2014, 7, 1), "0" * 64, _data_revision(data, date(2014, 7, 1)))
    assert ranker.rank(other_model) is Stale.MODEL  # not among the models it was forked with
    other_data = RankRequest("chicago", date(2014, 7, 1), model.fingerprint, (1, "2011-01-01"))
    assert ranker.rank(other_data) is Stale.DATA
    # The pool forks the process again (with the server's models as they are now), and when that
    # process cannot match the request either, ranks it in the server: the list is still answered.
    here = RankedRows.empty()
    assert lists.pool.run(lambda: here, other_model) is here
    assert ranker.forks == 2
    # Data it cannot match is no reason for a new fork (it would read the same database).
    assert lists.pool.run(lambda: here, other_data) is here
    assert ranker.forks == 2


def _request(lists: DailyLists, day: date) -> RankRequest:
    data, model = lists.city_data("chicago"), lists.model_for("chicago")
    version = lists._versions.built_from("chicago", data)
    assert version is not None
    return RankRequest("chicago", day, model.fingerprint, _data_revision(data, day), version.revision)


def _ranked_here(lists: DailyLists, day: date) -> list[dict[str, object]]:
    return list(lists._rank(lists.city_data("chicago"), lists.model_for("chicago"), day))


def _ranking_slowed(ranker: list_process.RankerProcess, seconds: float = 0.5) -> None:
    """Each request waits `seconds` in the list processes forked from now on before it is ranked: a
    test's requests are still in flight when it acts, however fast the host ranks a date."""
    rank = ranker._rank

    def slowly(request: RankRequest) -> RankedRows | Stale:
        time.sleep(seconds)
        return rank(request)

    ranker._rank = slowly


def test_requests_sent_ahead_are_answered_in_the_order_they_were_sent(lists: DailyLists) -> None:
    """Two requests on the socket at once (the second waits there while the child ranks the first):
    each caller gets its own answer, whichever reads first."""
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    first, second = date(2014, 7, 1), date(2014, 7, 2)
    with ranker._lock:
        channel = ranker._running(_request(lists, first))
        tickets = [channel.send(_request(lists, day).encode()) for day in (first, second)]
    answers: dict[int, bytes] = {}

    def read(ticket: int) -> None:
        answers[ticket] = channel.answer(ticket)

    readers = [threading.Thread(target=read, args=(ticket,)) for ticket in reversed(tickets)]
    for reader in readers:  # the second's reader starts first, and waits for the first's turn
        reader.start()
        time.sleep(0.05)
    for reader in readers:
        reader.join(timeout=60)
    for ticket, day in zip(tickets, (first, second), strict=True):
        rows = RankedRows.decode(answers[ticket][1:])
        assert list(rows) == _ranked_here(lists, day)
    assert ranker.forks == 1


def test_requests_in_flight_when_the_process_dies_are_ranked_by_the_next_one(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    _ranking_slowed(ranker)
    ranker.rank(_request(lists, date(2014, 7, 1)))  # forked, the city's data read
    first = ranker.pid
    assert first is not None
    days = (date(2014, 7, 3), date(2014, 7, 4))
    answers: dict[date, object] = {}
    callers = [
        threading.Thread(target=lambda d=day: answers.update({d: ranker.rank(_request(lists, d))}))
        for day in days
    ]
    for caller in callers:
        caller.start()
    time.sleep(0.1)  # both sent; the child is on the first (0.5 s before it ranks it)
    os.kill(first, signal.SIGKILL)
    for caller in callers:
        caller.join(timeout=120)
    for day in days:
        assert list(answers[day]) == _ranked_here(lists, day)  # type: ignore[call-overload]
    assert ranker.forks == 2 and ranker.pid not in (None, first)


def test_closing_lets_the_answer_on_its_way_arrive(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    _ranking_slowed(ranker)
    ranker.rank(_request(lists, date(2014, 7, 1)))
    pid = ranker.pid
    assert pid is not None
    answers: list[object] = []
    caller = threading.Thread(target=lambda: answers.append(ranker.rank(_request(lists, date(2014, 7, 5)))))
    caller.start()
    time.sleep(0.05)
    ranker.close()  # while the child is on it (0.5 s before it ranks it)
    caller.join(timeout=60)
    assert list(answers[0]) == _ranked_here(lists, date(2014, 7, 5))  # type: ignore[call-overload]
    assert ranker.pid is None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the closed list process kept running")


def test_answers_arrive_the_same_through_the_socket_alone(
    lists: DailyLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ranked day normally comes back in a memfd; without one (another OS) through the socket."""
    monkeypatch.setattr(list_process, "SHARED_MIN_BYTES", 1 << 40)  # read by the child after the fork
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    rows = ranker.rank(_request(lists, date(2014, 7, 6)))
    assert list(rows) == _ranked_here(lists, date(2014, 7, 6))  # type: ignore[arg-type]


def _record(lists: DailyLists, inspection_id: str) -> None:
    outcome = {
        "inspection_id": inspection_id,
        "establishment_id": "1",
        "date": date(2014, 7, 1),
        "inspection_type": "Canvass",
        "result": "Fail",
        "violations": None,
    }
    assert lists.record_outcomes("chicago", [type("Outcome", (), outcome)()]).created


def test_the_process_ranks_with_the_servers_outcomes_when_more_were_posted_since(
    lists: DailyLists,
) -> None:
    """Outcomes posted after the list process was forked: the server's build of the city's data is
    not in the child, which says so; the server then sends the outcomes it was built from, and the
    child ranks exactly what the server would have (and keeps that build for the next dates)."""
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    day = date(2014, 7, 10)
    model = lists.model_for("chicago")
    before = lists.city_data("chicago", day)
    ranker.rank(RankRequest("chicago", day, model.fingerprint, _data_revision(before, day)))  # forked
    _record(lists, "posted-after-the-fork")
    data = lists.city_data("chicago", day)  # the server's build: one recorded outcome
    version = lists._versions.built_from("chicago", data)
    assert version is not None and version.revision[0] == 1
    revision = _data_revision(data, day)
    assert revision != _data_revision(before, day)
    without = RankRequest("chicago", day, model.fingerprint, revision, version.revision)
    assert ranker.rank(without) is Stale.DATA
    request = dataclasses.replace(without, recorded=version.recorded)
    rows = ranker.rank(request)
    assert isinstance(rows, RankedRows)
    assert list(rows) == list(lists._rank(data, model, day))
    assert ranker.rank(without) is not Stale.DATA  # the child kept the build
    assert ranker.forks == 1


def test_the_process_never_opens_the_database(lists: DailyLists) -> None:
    """A forked child must not use the database library: another thread of the server may hold one
    of its locks at the fork (SQLite's allocator mutex, say), and the child would wait on it for
    ever. Here any use of the database in the child fails its list; none does, also after outcomes
    were posted since the fork."""
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    forked_setup = ranker._after_fork

    def without_database() -> None:
        forked_setup()

        def refuse() -> Repository:
            raise AssertionError("the list process opened the database")

        lists.repository = refuse
        lists._versions.repository = refuse

    ranker._after_fork = without_database
    model = lists.model_for("chicago")
    for n, day in enumerate((date(2014, 7, 10), date(2014, 7, 11), date(2014, 7, 12))):
        if n:
            _record(lists, f"posted-{n}")
        data = lists.city_data("chicago", day)
        version = lists._versions.built_from("chicago", data)
        assert version is not None
        request = RankRequest(
            "chicago", day, model.fingerprint, _data_revision(data, day), version.revision, version.recorded
        )
        rows = ranker.rank(request)
        assert isinstance(rows, RankedRows)
        assert list(rows) == list(lists._rank(data, model, day))
    assert ranker.forks == 1


def test_closing_stops_the_process(lists: DailyLists) -> None:
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    lists.issue(DailyQuery("chicago", date(2014, 7, 1), 10))
    pid = ranker.pid
    assert pid is not None
    lists.close()
    assert ranker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_radius_indexes_are_built_before_the_fork(
    lists: DailyLists, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server builds the city's radius indexes before forking, so that its list processes share
    one copy instead of each building its own (the server itself never ranks here)."""
    monkeypatch.setattr(neighbourhood, "_indexes", {})
    lists.issue(DailyQuery("chicago", date(2014, 7, 1), 10))
    kinds = sorted(key[0] for key in neighbourhood._indexes)
    assert kinds == ["events", "events", "nearby"]


def test_the_process_lets_go_of_the_servers_sockets_and_pipes(lists: DailyLists) -> None:
    """A client's connection or a pipe the server closes is closed for the other end too: the list
    process forked meanwhile holds no copy (else a keep-alive client would write into a dead
    connection and wait, and a program reading a pipe would never see its end)."""
    client_end, server_end = socket.socketpair()
    read_end, write_end = os.pipe()
    try:
        lists.issue(DailyQuery("chicago", date(2014, 7, 1), 10))  # forks the list process
        assert lists.pool.rankers[0].pid is not None  # type: ignore[index]
        server_end.close()
        os.close(write_end)
        client_end.settimeout(10)
        assert client_end.recv(1) == b""  # end of stream, not a timeout
        readable, _, _ = select.select([read_end], [], [], 10)
        assert readable and os.read(read_end, 1) == b""
    finally:
        client_end.close()
        os.close(read_end)
