"""Issued lists and outcomes, on SQLite and (where reachable) PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from app.storage.repository import DatabaseUnavailable, Repository
from app.storage.schema import CURRENT_VERSION, SchemaError, database_version, migrate
from app.storage.tables import outcomes, schema_version

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
            result = workers[worker].issue_list("chicago", date(2014, 9, 2), "m", "v", {"n": number}, ROWS)
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


def test_schema_is_versioned(database_url: str) -> None:
    repository = Repository.open(database_url)
    assert migrate(repository.engine) == CURRENT_VERSION  # already current: nothing to do
    with repository.engine.begin() as connection:
        assert database_version(connection) == CURRENT_VERSION
        connection.execute(
            schema_version.insert().values(version=CURRENT_VERSION + 1, applied_at=sa.func.now())
        )
    with pytest.raises(SchemaError, match=f"version {CURRENT_VERSION + 1}"):
        migrate(repository.engine)


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
