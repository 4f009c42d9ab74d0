"""Daily lists ranked in a long-lived list process (CIVICRISK_DAILY_CHILD_PROCESS): ranked outside
the server process, one process for many dates, forked again when it dies, never ranking with
another model or other data than the server's, and stopped with the app."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from app_helpers import MODELS_DIR

from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyOptions, DailyQuery, _data_revision
from app.inspections.list_process import RankRequest, Stale
from app.inspections.ranked_rows import RankedRows
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import Repository
from app.platform.storage.tables import outcomes as outcomes_table
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
    good = RankRequest("chicago", date(2014, 7, 1), model.fingerprint, _data_revision(data, date(2014, 7, 1)))
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


def test_the_process_ranks_with_the_servers_outcomes_when_more_were_posted_since(
    lists: DailyLists,
) -> None:
    """Outcomes posted between the server's build of the city's data and the list process's read:
    the process builds the server's data again from the outcomes it was built from (count, latest
    receipt), and ranks exactly what the server would have; without them it says the data is stale."""
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    day = date(2014, 7, 10)
    model = lists.model_for("chicago")

    def record(inspection_id: str) -> None:
        outcome = {
            "inspection_id": inspection_id,
            "establishment_id": "1",
            "date": date(2014, 7, 1),
            "inspection_type": "Canvass",
            "result": "Fail",
            "violations": None,
        }
        assert lists.record_outcomes("chicago", [type("Outcome", (), outcome)()]).created

    record("posted-before-the-build")
    data = lists.city_data("chicago", day)  # the server's build: one recorded outcome
    built_from = lists._versions.built_from("chicago", data)
    assert built_from is not None and built_from[0][0] == 1
    outcomes = built_from[0]
    ranker.rank(RankRequest("chicago", day, model.fingerprint, _data_revision(data, day)))  # forked
    record("posted-after-the-build")  # the process reads two, the server ranks with one
    revision = _data_revision(data, day)
    rows = ranker.rank(RankRequest("chicago", day, model.fingerprint, revision, outcomes))
    assert isinstance(rows, RankedRows)
    assert list(rows) == list(lists._rank(data, model, day))
    assert ranker.rank(RankRequest("chicago", day, model.fingerprint, revision)) is Stale.DATA
    assert ranker.forks == 1


def test_the_process_ranks_with_the_servers_outcomes_when_one_received_earlier_committed_later(
    lists: DailyLists,
) -> None:
    """Two posts at once: each takes its receipt time, then commits; the later receipt may commit
    first, and a build read in between holds it alone. Reading back "received by the build's latest
    receipt" then finds both: the request's inspection ids say which one the server's build held
    (without them the process can only say the data is stale, and the server ranks the list)."""
    ranker = lists.pool.rankers[0]  # type: ignore[index]
    day = date(2014, 7, 10)
    model = lists.model_for("chicago")
    outcome = {
        "city": "chicago",
        "establishment_id": "1",
        "inspection_date": date(2014, 7, 1),
        "inspection_type": "Canvass",
        "result": "Fail",
        "violations": None,
    }
    repository = lists.repository()
    later = datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC)
    with repository.engine.begin() as connection:
        connection.execute(
            outcomes_table.insert().values(**outcome, inspection_id="later", received_at=later)
        )
    data = lists.city_data("chicago", day)  # the server's build: the later receipt alone
    built_from = lists._versions.built_from("chicago", data)
    assert built_from is not None and built_from[1] == ("later",)
    revision, ids = built_from
    ranker.rank(RankRequest("chicago", day, model.fingerprint, _data_revision(data, day)))  # forked
    earlier = later - timedelta(seconds=1)
    with repository.engine.begin() as connection:  # the earlier receipt, committed only now
        connection.execute(
            outcomes_table.insert().values(**outcome, inspection_id="earlier", received_at=earlier)
        )
    request = RankRequest("chicago", day, model.fingerprint, _data_revision(data, day), revision)
    assert ranker.rank(request) is Stale.DATA
    rows = ranker.rank(dataclasses.replace(request, outcome_ids=ids))
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
