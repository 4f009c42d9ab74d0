"""Each daily list is computed once (issue #19): concurrent requests in a process share one
computation, processes sharing a database share one through a claim row (a dead holder's is taken
over), computations past the configured wait get 503 + Retry-After, and tomorrow's lists are
computed ahead at start-up and after new outcomes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from app_helpers import MODELS_DIR, PARTNER, make_settings
from daily_once_worker import issue_at_once
from fastapi.testclient import TestClient

from app.inspections.cities import CityStore
from app.inspections.claimed import holder
from app.inspections.daily import DailyLists, DailyOptions, DailyQuery
from app.main import create_app
from app.platform.errors import InvalidRequest
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import Repository
from app.platform.storage.tables import issued_lists, list_claims

DAILY = "/v1/inspections/chicago/daily"


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    loaded = ModelRegistry(MODELS_DIR, None)
    loaded.reload()
    return loaded


@pytest.fixture(scope="module")
def cities() -> CityStore:
    store = CityStore(Settings().data_dir)
    store.city("chicago")
    return store


def _lists(
    cities: CityStore, registry: ModelRegistry, url: str, **options: Any
) -> tuple[DailyLists, Repository]:
    repository = Repository.open(url)
    return DailyLists(cities, registry, lambda: repository, DailyOptions(**options)), repository


def test_concurrent_requests_for_one_list_compute_it_once(
    cities: CityStore, registry: ModelRegistry, database_url: str
) -> None:
    lists, repository = _lists(cities, registry, database_url)
    claims: list[str] = []
    claim_list = repository.claim_list

    def counted_claim(*args: Any) -> Any:
        claims.append(args[0].sha256)
        return claim_list(*args)

    repository.claim_list = counted_claim  # type: ignore[method-assign]
    plain = DailyQuery("chicago", date(2014, 7, 8), 30)
    high = DailyQuery("chicago", date(2014, 7, 8), 30, min_tier="high")
    with ThreadPoolExecutor(8) as threads:
        issued = list(threads.map(lists.issue, [plain] * 6 + [high] * 2))
    # One ranking of the day for both lists, and one claim per list: the other requests waited for
    # the computation in this process, not by polling the database.
    assert lists.pool.computations == 1
    assert sorted(claims) == sorted({claims[0], claims[-1]}) and len(set(claims)) == 2
    assert len({list_.id for list_ in issued[:6]}) == 1 and len(issued[0].rows) == 30
    assert issued[6].id == issued[7].id != issued[0].id
    # Another filter of the same day later: filtered from the cached ranking and stored.
    medium = lists.issue(DailyQuery("chicago", date(2014, 7, 8), 30, min_tier="medium"))
    assert lists.pool.computations == 1 and medium.id not in {issued[0].id, issued[6].id}


def test_two_processes_sharing_a_database_compute_a_list_once(database_url: str) -> None:
    Repository.open(database_url)  # migrated once up front: the race here is the list's
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results: Any = context.Queue()
    workers = [
        context.Process(
            target=issue_at_once, args=(database_url, str(MODELS_DIR), "2014-07-09", start, results)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=240) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert sorted(computations for computations, _, _ in answers) == [0, 1]
    assert answers[0][1:] == answers[1][1:]  # the same list id and rows
    with Repository.open(database_url).engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(issued_lists)).scalar() == 1
        claim = connection.execute(sa.select(list_claims)).one()
    assert claim.list_id == answers[0][1]


def _claim_row(lists: DailyLists, query: DailyQuery, by: str, age_seconds: float) -> dict[str, Any]:
    data = lists.city_data(query.city)
    model = lists.model_for(query.city)
    list_date = lists.resolve_date(data, query.list_date)
    key = lists._list_key(query, data, model, list_date)
    return {
        "key_sha256": key.sha256,
        "city": key.city,
        "list_date": key.list_date,
        "model_version": key.model_version,
        "parameters": key.parameters,
        "holder": by,
        "claimed_at": datetime.now(UTC) - timedelta(seconds=age_seconds),
    }


def test_a_stale_claim_is_taken_over(cities: CityStore, registry: ModelRegistry, database_url: str) -> None:
    lists, repository = _lists(cities, registry, database_url, max_wait_seconds=5, claim_timeout_seconds=30)
    query = DailyQuery("chicago", date(2014, 7, 10), 10)
    row = _claim_row(lists, query, "dead-host:4242:0000", age_seconds=31)
    with repository.engine.begin() as connection:
        connection.execute(list_claims.insert().values(row))
    started = time.monotonic()
    issued = lists.issue(query)
    assert time.monotonic() - started < 5  # taken over at once, not waited for
    assert lists.pool.computations == 1
    with repository.engine.connect() as connection:
        claim = connection.execute(sa.select(list_claims)).one()
    assert (claim.holder, claim.list_id) == (holder(), issued.id)


def test_a_live_claim_is_waited_for_then_its_list_read(
    cities: CityStore, registry: ModelRegistry, database_url: str
) -> None:
    lists, repository = _lists(cities, registry, database_url, max_wait_seconds=5)
    query = DailyQuery("chicago", date(2014, 7, 11), 10)
    row = _claim_row(lists, query, "other-host:1:0000", age_seconds=0)
    with repository.engine.begin() as connection:
        connection.execute(list_claims.insert().values(row))
    # The other process stores its list after a second and names it in the claim.
    other = repository.issue_list("chicago", date(2014, 7, 11), "m", "v", {"by": "other"}, [{"rank": 1}])

    def finish() -> None:
        time.sleep(1)
        repository.complete_list_claim(row["key_sha256"], other.id)

    finisher = threading.Thread(target=finish)
    finisher.start()
    issued = lists.issue(query)
    finisher.join()
    assert issued.id == other.id and lists.pool.computations == 0


def test_a_live_claim_not_done_within_the_wait_is_503(
    cities: CityStore, registry: ModelRegistry, database_url: str
) -> None:
    lists, repository = _lists(cities, registry, database_url, max_wait_seconds=0.3)
    query = DailyQuery("chicago", date(2014, 7, 12), 10)
    with repository.engine.begin() as connection:
        connection.execute(list_claims.insert().values(_claim_row(lists, query, "other:1:0000", 0)))
    with pytest.raises(Exception) as raised:
        lists.issue(query)
    assert getattr(raised.value, "status", None) == 503 and raised.value.retry_after >= 1  # type: ignore[attr-defined]
    assert lists.pool.computations == 0


@pytest.fixture
def busy_client(tmp_path: Any) -> Iterator[TestClient]:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'busy.sqlite3'}",
        daily_max_wait_seconds=0.5,
        daily_claim_timeout_seconds=30,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_list_waiting_past_the_limit_for_a_slot_is_503_with_retry_after(busy_client: TestClient) -> None:
    lists: DailyLists = busy_client.app.state.daily_lists  # type: ignore[attr-defined]
    busy_client.get(DAILY, params={"date": "2014-07-13", "limit": 5}).raise_for_status()  # data loaded
    # Every slot (the list process's and the place in its queue) taken by computations lasting 3 s.
    occupied = [
        threading.Thread(target=lists.pool.run, args=(lambda: time.sleep(3) or [],))
        for _ in range(lists.pool.slot_count)
    ]
    for thread in occupied:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    answer = busy_client.get(DAILY, params={"date": "2014-07-14", "limit": 5})
    waited = time.monotonic() - started
    for thread in occupied:
        thread.join()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "daily_lists_busy"
    assert int(answer.headers["Retry-After"]) >= 1
    assert 0.4 < waited < 2.5
    # Once the slot is free, the same list is computed.
    assert busy_client.get(DAILY, params={"date": "2014-07-14", "limit": 5}).status_code == 200
    page = busy_client.get("/inspector", params={"city": "chicago", "date": "2014-07-15"})
    assert page.status_code == 200


def _stored(client: TestClient) -> list[tuple[str, int]]:
    engine = client.app.state.repository().engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(issued_lists.c.list_date, issued_lists.c.parameters)).all()
    return sorted((row.list_date.isoformat(), row.parameters["limit"]) for row in rows)


def test_tomorrows_lists_are_computed_at_start_up_and_after_new_outcomes(tmp_path: Any) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'ahead.sqlite3'}",
        daily_precompute=True,
        daily_precompute_min_interval_seconds=0,
    )
    with TestClient(create_app(settings)) as client:
        lists: DailyLists = client.app.state.daily_lists  # type: ignore[attr-defined]
        assert lists.ahead.wait_for_runs(1, timeout=240)
        ahead = _stored(client)
        # Chicago's and Boston's default lists for the day after their data: the API's and the page's.
        assert ("2014-08-30", 100) in ahead and ("2014-08-30", 50) in ahead
        assert ("2014-01-01", 100) in ahead and len(ahead) == 4
        computed = lists.pool.computations
        # The first inspector of the morning: the list is read, not computed.
        morning = client.get(DAILY)
        assert morning.status_code == 200 and lists.pool.computations == computed

        outcome = {
            "inspection_id": "ahead-1",
            "establishment_id": morning.json()["rows"][0]["establishment_id"],
            "date": "2014-08-29",
            "inspection_type": "Canvass",
            "result": "Fail",
            "violations": None,
        }
        posted = client.post(
            "/v1/inspections/chicago/outcomes", json={"outcomes": [outcome]}, headers=PARTNER
        )
        assert posted.status_code == 201, posted.text
        assert lists.ahead.wait_for_runs(2, timeout=240)
        assert len(_stored(client)) == 6  # Chicago's two lists again, over the new history
        assert lists.pool.computations == computed + 1
        again = client.get(DAILY)
        assert again.json()["list_id"] != morning.json()["list_id"]
        assert lists.pool.computations == computed + 1


def test_an_outcome_changes_the_lists_of_later_days_only(
    cities: CityStore, registry: ModelRegistry, database_url: str
) -> None:
    """A list for day D reads nothing dated on or after D: an outcome recorded for a later day keeps
    D's ranking (cached, and its stored list); one recorded for an earlier day ranks D again."""
    lists, _ = _lists(cities, registry, database_url, precompute=False)
    july = DailyQuery("chicago", date(2014, 7, 10), 20)
    first = lists.issue(july)
    computed = lists.pool.computations

    def record(inspection_id: str, day: str) -> None:
        outcome = {
            "inspection_id": inspection_id,
            "establishment_id": first.rows[0]["establishment_id"],
            "date": date.fromisoformat(day),
            "inspection_type": "Canvass",
            "result": "Fail",
            "violations": None,
        }
        written = lists.record_outcomes("chicago", [type("Outcome", (), outcome)()])
        assert written.created

    july_data = lists.city_data("chicago", july.list_date)
    record("later-day-1", "2014-08-20")
    after_later = lists.issue(july)
    assert lists.pool.computations == computed and after_later.id == first.id
    # Nor is the city's data rebuilt for July's list; the current data (tomorrow's list) has the outcome.
    assert lists.city_data("chicago", july.list_date) is july_data
    assert "later-day-1" in set(lists.city_data("chicago").inspections["inspection_id"])
    record("earlier-day-1", "2014-07-01")
    after_earlier = lists.issue(july)
    assert lists.pool.computations == computed + 1 and after_earlier.id != first.id
    assert "earlier-day-1" in set(lists.city_data("chicago", july.list_date).inspections["inspection_id"])


def test_an_outcome_past_the_data_widens_the_dates_a_list_can_be_drawn_for(
    cities: CityStore, registry: ModelRegistry, database_url: str
) -> None:
    """The data runs to 2014-08-29, so lists reach 2014-09-12; an outcome of 2014-09-05 moves that to
    09-19, though a list of 09-15 reads nothing of that outcome's day."""
    lists, _ = _lists(cities, registry, database_url, precompute=False)
    with pytest.raises(InvalidRequest):
        lists.issue(DailyQuery("chicago", date(2014, 9, 15), 5))
    outcome = {
        "inspection_id": "widen-1",
        "establishment_id": "2298459",
        "date": date(2014, 9, 5),
        "inspection_type": "Canvass",
        "result": "Pass",
        "violations": None,
    }
    assert lists.record_outcomes("chicago", [type("Outcome", (), outcome)()]).created
    assert lists.issue(DailyQuery("chicago", date(2014, 9, 15), 5)).list_date == date(2014, 9, 15)
