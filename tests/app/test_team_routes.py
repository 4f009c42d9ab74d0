"""Routes for a team: the top of a day's list split into compact routes, stored with the list."""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Iterator

import pytest
from app_helpers import make_settings
from fastapi.testclient import TestClient

from app.inspections.team_routes import Place, compact_groups, order_route, path_km, plan
from app.main import create_app

ROUTES = "/v1/inspections/chicago/daily/routes"


def _blobs(seed: int = 7) -> list[Place]:
    """Four tight clusters of 10 places, ~10 km apart, ranks shuffled across them."""
    rng = random.Random(seed)
    centres = [(41.80, -87.70), (41.80, -87.58), (41.89, -87.70), (41.89, -87.58)]
    points = [
        (lat + rng.gauss(0, 0.004), lon + rng.gauss(0, 0.004)) for lat, lon in centres for _ in range(10)
    ]
    ranks = list(range(1, 41))
    rng.shuffle(ranks)
    return [Place(rank, lat, lon) for rank, (lat, lon) in zip(ranks, points, strict=True)]


def test_groups_are_the_clusters_and_respect_the_size() -> None:
    places = _blobs()
    groups = compact_groups(places, 4)
    assert sorted(len(group) for group in groups) == [10, 10, 10, 10]
    assert sorted(sorted(group) for group in groups) == [list(range(i, i + 10)) for i in (0, 10, 20, 30)]
    uneven = compact_groups(places[:37], 4)
    assert max(len(group) for group in uneven) <= 10 and sum(map(len, uneven)) == 37


def test_routes_visit_every_place_once_riskiest_first_and_shorter_than_rank_order() -> None:
    places = _blobs()
    routes = plan(places, 4)
    assert sorted(i for route in routes for i in route) == list(range(40))
    for route in routes:
        assert places[route[0]].rank == min(places[i].rank for i in route)
        ranks = [places[i].rank for i in route]
        half = math.ceil(len(route) / 2)
        assert max(ranks[:half]) < min(ranks[half:])  # the riskier half first
    rank_order = sorted(range(40), key=lambda i: places[i].rank)
    dealt = [rank_order[k::4] for k in range(4)]  # the ranked list dealt out in rank order
    assert sum(path_km(places, r) for r in routes) < 0.5 * sum(path_km(places, r) for r in dealt)
    one_wave = order_route(places, routes[0], waves=1)
    assert path_km(places, one_wave) <= path_km(places, routes[0]) + 1e-9


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('routes') / 'lists.sqlite3'}"
        return
    url, drop = request.getfixturevalue("postgres_schema_factory")()
    try:
        yield url
    finally:
        drop()


def test_routes_of_the_chicago_list_are_stored_with_it(database_url: str) -> None:
    with TestClient(create_app(make_settings(database_url=database_url))) as client:
        _routes_are_stored_with_their_list(client)
        plan_id = client.get(ROUTES, params={"inspectors": 4, "per_inspector": 10}).json()["plan_id"]
    # Another server (its own memory, the same database) answers with the same stored plan.
    with TestClient(create_app(make_settings(database_url=database_url))) as other:
        assert other.get(ROUTES, params={"inspectors": 4, "per_inspector": 10}).json()["plan_id"] == plan_id
        assert other.get(f"/v1/inspections/routes/{plan_id}").status_code == 200


def _routes_are_stored_with_their_list(client: TestClient) -> None:
    answer = client.get(ROUTES, params={"inspectors": 4, "per_inspector": 10})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["routes"]) == 4 and "no road network" in body["distance"]
    stops = [stop for route in body["routes"] for stop in route["stops"]]
    assert all(len(route["stops"]) <= 10 for route in body["routes"])
    listed = client.get(f"/v1/inspections/lists/{body['list_id']}").json()
    assert len(listed["rows"]) == 40
    by_rank = {row["rank"]: row for row in listed["rows"]}
    for stop in stops:  # each stop is its list row
        assert by_rank[stop["rank"]]["establishment_id"] == stop["establishment_id"]
    routed = {stop["rank"] for stop in stops} | {row["rank"] for row in body["not_routed"]}
    assert routed == set(range(1, 41))
    total = sum(route["length_km"] for route in body["routes"])
    assert math.isclose(body["total_length_km"], total, abs_tol=0.05)

    again = client.get(ROUTES, params={"inspectors": 4, "per_inspector": 10}).json()
    assert again["plan_id"] == body["plan_id"]  # stored once
    stored = client.get(f"/v1/inspections/routes/{body['plan_id']}").json()
    assert stored["routes"] == body["routes"]
    sheet = client.get(f"/v1/inspections/routes/{body['plan_id']}/2", params={"format": "csv"})
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [int(row["stop"]) for row in rows] == list(range(1, len(body["routes"][1]["stops"]) + 1))
    assert {row["route"] for row in rows} == {"2"}


def test_a_city_without_coordinates_gets_a_422_saying_why(client: TestClient) -> None:
    answer = client.get("/v1/inspections/boston/daily/routes", params={"inspectors": 2, "per_inspector": 5})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "city_has_no_coordinates" and "no coordinates" in error["message"]
    assert error["details"][0]["loc"] == ["path", "city"]
    assert "latitude/longitude" in error["details"][0]["message"]


def test_bad_team_sizes_and_unknown_plans(client: TestClient) -> None:
    assert client.get(ROUTES, params={"inspectors": 0, "per_inspector": 5}).status_code == 422
    assert client.get(ROUTES, params={"inspectors": 2, "per_inspector": 500}).status_code == 422
    assert client.get(ROUTES, params={"inspectors": 2}).status_code == 422
    assert client.get("/v1/inspections/nowhere/daily/routes?inspectors=2&per_inspector=5").status_code == 404
    assert client.get("/v1/inspections/routes/999999").status_code == 404
    plan_id = client.get(ROUTES, params={"inspectors": 2, "per_inspector": 3}).json()["plan_id"]
    assert client.get(f"/v1/inspections/routes/{plan_id}/3").status_code == 404
