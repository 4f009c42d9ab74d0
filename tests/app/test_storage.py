"""Issued lists and outcomes, on SQLite and (where reachable) PostgreSQL; migrations: test_migrations.py."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from app.platform.storage.repository import DatabaseUnavailable, Repository
from app.platform.storage.tables import issued_lists, outcomes

ROWS = [
    {"rank": 1, "establishment_id": "42", "score": 0.1 + 0.2, "tier": "high", "reasons": [{"feature": "x"}]},
    {"rank": 2, "establishment_id": "7", "score": 1 / 3, "tier": "medium", "reasons": []},
]


def _outcome(inspection_id: str, result: str = "Pass") -> dict[str, object]:
    return {
        "inspection_id": inspection_id,
        "establishment_id": "42",
        "inspection_date": date(2014, 9, 2),
        "inspection_type": "Canvass",
        "result": result,
        "violations": "1. SOURCE SOUND CONDITION - Comments: ",
    }


def test_a_list_comes_back_exactly_as_issued(database_url: str) -> None:
    repository = Repository.open(database_url)
    issued = repository.issue_list("chicago", date(2014, 9, 2), "m", "v1", {"limit": 2}, ROWS)
    again = repository.get_list(issued.id)
    assert again is not None
    assert again.rows == ROWS  # floats survive exactly
    assert (again.city, again.list_date, again.model_version, again.parameters) == (
        "chicago",
        date(2014, 9, 2),
        "v1",
        {"limit": 2},
    )
    assert repository.get_list(issued.id + 1000) is None


def test_two_workers_issue_distinct_ids(database_url: str) -> None:
    workers = [Repository.open(database_url) for _ in range(2)]  # separate engines, as two processes
    issued: list[tuple[int, int]] = []
    lock = threading.Lock()

    def issue(worker: int) -> None:
        for number in range(15):
            parameters = {"worker": worker, "n": number}  # 30 different lists (the same one is stored once)
            result = workers[worker].issue_list("chicago", date(2014, 9, 2), "m", "v", parameters, ROWS)
            with lock:
                issued.append((result.id, worker))

    threads = [threading.Thread(target=issue, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [list_id for list_id, _ in issued]
    assert len(set(ids)) == 30
    for list_id, _ in issued:
        stored = workers[1].get_list(list_id)
        assert stored is not None and stored.rows == ROWS


def _stored_lists(repository: Repository) -> int:
    with repository.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(issued_lists)).scalar_one())


def test_the_same_list_asked_again_is_not_stored_again(database_url: str) -> None:
    repository = Repository.open(database_url)
    first = repository.issue_list("chicago", date(2014, 9, 2), "m", "v1", {"limit": 2}, ROWS)
    again = repository.issue_list("chicago", date(2014, 9, 2), "m", "v1", {"limit": 2}, ROWS)
    assert (again.id, again.issued_at) == (first.id, first.issued_at)
    assert _stored_lists(repository) == 1
    # Anything that makes it another list stores another list.
    changed_rows = [ROWS[0] | {"score": 0.5}, ROWS[1]]
    others = [
        repository.issue_list("chicago", date(2014, 9, 2), "m", "v1", {"limit": 2}, changed_rows),
        repository.issue_list("chicago", date(2014, 9, 2), "m", "v1", {"limit": 3}, ROWS),
        repository.issue_list("chicago", date(2014, 9, 2), "m", "v2", {"limit": 2}, ROWS),
        repository.issue_list("chicago", date(2014, 9, 3), "m", "v1", {"limit": 2}, ROWS),
        repository.issue_list("boston", date(2014, 9, 2), "m", "v1", {"limit": 2}, ROWS),
    ]
    assert len({first.id, *(other.id for other in others)}) == 6
    assert _stored_lists(repository) == 6


def test_two_workers_issuing_the_same_list_store_it_once(database_url: str) -> None:
    workers = [Repository.open(database_url) for _ in range(4)]
    ids: list[int] = []
    start = threading.Barrier(len(workers))

    def issue(worker: Repository) -> None:
        start.wait()  # all at once, so look-ups and inserts interleave
        ids.append(worker.issue_list("chicago", date(2014, 9, 2), "m", "v", {"same": True}, ROWS).id)

    threads = [threading.Thread(target=issue, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == len(workers) and len(set(ids)) == 1
    assert _stored_lists(workers[0]) == 1


def test_outcomes_are_idempotent(database_url: str) -> None:
    repository = Repository.open(database_url)
    first = repository.record_outcomes("chicago", [_outcome("9001"), _outcome("9002")])
    assert first.created == ["9001", "9002"] and first.already_recorded == []
    second = repository.record_outcomes("chicago", [_outcome("9001", result="Fail"), _outcome("9003")])
    assert second.created == ["9003"] and second.already_recorded == ["9001"]
    stored = {row["inspection_id"]: row for row in repository.outcomes("chicago")}
    assert sorted(stored) == ["9001", "9002", "9003"]
    assert stored["9001"]["result"] == "Pass"  # the first record stands
    assert repository.outcomes("boston") == []


def test_unreachable_database_is_reported_not_crashed() -> None:
    with pytest.raises(DatabaseUnavailable, match="database unavailable"):
        Repository.open("postgresql+psycopg://postgres@127.0.0.1:9/test")


def test_failed_write_leaves_nothing_half_written(database_url: str) -> None:
    repository = Repository.open(database_url)
    bad = _outcome("9100") | {"inspection_date": None}  # violates NOT NULL after the first row
    with pytest.raises(DatabaseUnavailable):
        repository.record_outcomes("chicago", [_outcome("9099"), bad])
    with repository.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(outcomes)).scalar() == 0
