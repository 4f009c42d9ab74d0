"""Daily lists (JSON, CSV, as issued), outcomes, and the inspector page, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from app_helpers import PARTNER, make_settings
from fastapi.testclient import TestClient

from app.main import create_app

DAILY = "/v1/inspections/chicago/daily"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lists_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'lists.sqlite3'}"
    else:
        url, drop = request.getfixturevalue("postgres_schema_factory")()
    try:
        with TestClient(create_app(make_settings(database_url=url))) as client:
            yield client
    finally:
        if drop is not None:
            drop()


def test_daily_list_is_ranked_with_reasons(lists_client: TestClient) -> None:
    response = lists_client.get(DAILY, params={"date": "2014-08-30", "limit": 25})
    assert response.status_code == 200
    body = response.json()
    assert body["date"] == "2014-08-30" and body["model"]["name"] == "chicago-food-inspections"
    rows = body["rows"]
    assert [row["rank"] for row in rows] == list(range(1, 26))
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert body["parameters"]["in_scope"] > 5000
    first = rows[0]
    assert first["tier"] == "high" and len(first["reasons"]) == 3
    assert first["name"] and first["address"] and first["last_inspection_date"] < "2014-08-30"
    assert first["community_area"]


def test_filters_narrow_the_list(lists_client: TestClient) -> None:
    rows = lists_client.get(
        DAILY,
        params={"date": "2014-08-30", "facility_type": "Grocery Store", "min_tier": "medium", "limit": 500},
    ).json()["rows"]
    assert rows and all(row["facility_type"] == "Grocery Store" for row in rows)
    assert all(row["tier"] in ("medium", "high") for row in rows)
    by_zip = lists_client.get(DAILY, params={"date": "2014-08-30", "zip": "60614"}).json()["rows"]
    assert by_zip and all(row["zip"] == "60614" for row in by_zip)
    area = lists_client.get(DAILY, params={"date": "2014-08-30", "community_area": "HYDE PARK"}).json()[
        "rows"
    ]
    assert area and all(row["community_area"] == "HYDE PARK" for row in area)


def test_csv_download_matches_the_json(lists_client: TestClient) -> None:
    response = lists_client.get(
        DAILY, params={"date": "2014-08-30", "limit": 10}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 10 and rows[0]["rank"] == "1"
    stored = lists_client.get(f"/v1/inspections/lists/{response.headers['x-list-id']}").json()
    assert [row["establishment_id"] for row in stored["rows"]] == [row["establishment_id"] for row in rows]
    assert rows[0]["reasons"] == "; ".join(reason["text"] for reason in stored["rows"][0]["reasons"])


def test_asking_again_returns_the_stored_list(lists_client: TestClient) -> None:
    params = {"date": "2014-08-20", "limit": 5}
    first = lists_client.get(DAILY, params=params)
    again = lists_client.get(DAILY, params=params)
    assert again.json() == first.json()  # the same id and first issue time: stored once
    assert again.headers["x-list-id"] == first.headers["x-list-id"]
    other = lists_client.get(DAILY, params=params | {"limit": 6}).json()
    assert other["list_id"] != first.json()["list_id"]


def test_a_list_is_returned_exactly_as_issued_after_new_outcomes(lists_client: TestClient) -> None:
    issued = lists_client.get(DAILY, params={"date": "2014-08-30", "limit": 20}).json()
    top = issued["rows"][0]
    outcome = {
        "inspection_id": f"test-{issued['list_id']}",
        "establishment_id": top["establishment_id"],
        "date": "2014-08-29",
        "result": "Pass",
        "violations": "",
    }
    posted = lists_client.post(
        "/v1/inspections/chicago/outcomes", json={"outcomes": [outcome]}, headers=PARTNER
    )
    assert posted.status_code == 201 and posted.json()["created"] == [outcome["inspection_id"]]
    again = lists_client.post(
        "/v1/inspections/chicago/outcomes", json={"outcomes": [outcome]}, headers=PARTNER
    )
    assert again.status_code == 200 and again.json()["already_recorded"] == [outcome["inspection_id"]]

    # The new outcome is history now: the same establishment's features change for the next list ...
    later = lists_client.get(DAILY, params={"date": "2014-08-30", "limit": 7000}).json()
    mine = next(row for row in later["rows"] if row["establishment_id"] == top["establishment_id"])
    assert mine["last_inspection_date"] == "2014-08-29" and mine["score"] != top["score"]
    # ... but the list issued before is unchanged (its staleness was said when it was asked for).
    as_issued = {key: value for key, value in issued.items() if key != "staleness"}
    assert lists_client.get(f"/v1/inspections/lists/{issued['list_id']}").json() == as_issued


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "2014-02-30"}, "date"),
        ({"date": "2030-01-01"}, "date"),
        ({"date": "2011-01-01"}, "date"),
        ({"min_tier": "urgent"}, "min_tier"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_parameters_are_named(lists_client: TestClient, params: dict[str, str], field: str) -> None:
    response = lists_client.get(DAILY, params=params)
    assert response.status_code == 422
    assert field in [part for detail in response.json()["error"]["details"] for part in detail["loc"]]


def test_unknown_city_and_list_are_404(lists_client: TestClient) -> None:
    assert lists_client.get("/v1/inspections/atlantis/daily").json()["error"]["code"] == "city_not_found"
    assert lists_client.get("/v1/inspections/lists/999999").status_code == 404


def test_bad_outcomes_store_nothing(lists_client: TestClient) -> None:
    good = {"inspection_id": "bad-batch-1", "establishment_id": "1", "date": "2014-08-29", "result": "Pass"}
    bad = [
        good,
        good | {"inspection_id": "bad-batch-2", "result": "Passed with flying colours"},
        good | {"inspection_id": "bad-batch-3", "violations": "99. NOT A CODE - Comments: "},
        good | {"inspection_id": "bad-batch-4", "date": "2199-01-01"},  # in the future
    ]
    response = lists_client.post("/v1/inspections/chicago/outcomes", json={"outcomes": bad}, headers=PARTNER)
    assert response.status_code == 422
    locations = [detail["loc"] for detail in response.json()["error"]["details"]]
    assert ["body", "outcomes", 1, "result"] in locations
    assert ["body", "outcomes", 2, "violations"] in locations
    assert ["body", "outcomes", 3, "date"] in locations
    retry = lists_client.post("/v1/inspections/chicago/outcomes", json={"outcomes": [good]}, headers=PARTNER)
    assert retry.status_code == 201  # the first, valid outcome was not stored by the failed request
    missing = lists_client.post(
        "/v1/inspections/chicago/outcomes", json={"outcomes": [{"inspection_id": "x"}]}, headers=PARTNER
    )
    assert missing.status_code == 422


def test_outcomes_need_a_key(lists_client: TestClient) -> None:
    response = lists_client.post("/v1/inspections/chicago/outcomes", json={"outcomes": []})
    assert response.status_code == 401


OUTCOMES = "/v1/inspections/chicago/outcomes"


def test_outcomes_check_the_key_and_media_type_before_the_body(lists_client: TestClient) -> None:
    """The key first (a body that is not even JSON gets 401 without one), then the media type (415,
    as the README says, not 422), then the body."""
    garbage = {"content": b"\xff not json", "headers": {"Content-Type": "text/plain"}}
    assert lists_client.post(OUTCOMES, **garbage).status_code == 401  # type: ignore[arg-type]
    keyed = {"content": b"\xff not json", "headers": {"Content-Type": "text/plain", **PARTNER}}
    answer = lists_client.post(OUTCOMES, **keyed)  # type: ignore[arg-type]
    assert answer.status_code == 415 and answer.json()["error"]["code"] == "unsupported_media_type"
    json_headers = {"Content-Type": "application/json", **PARTNER}
    assert lists_client.post(OUTCOMES, content=b"{", headers=json_headers).status_code == 400
    assert lists_client.post(OUTCOMES, content=b'{"\xff": 1}', headers=json_headers).status_code == 400
    too_big = b'{"outcomes": [' + b" " * (8 * 1024 * 1024) + b"]}"
    refused = lists_client.post(OUTCOMES, content=too_big, headers=json_headers)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("value", [0, "0", True, "2014-13-45", "2014-09-02T00:00:00", "20140902", None])
def test_outcome_dates_are_iso_strings_only(lists_client: TestClient, value: object) -> None:
    outcome = {"inspection_id": "date-check", "establishment_id": "1", "date": value, "result": "Pass"}
    answer = lists_client.post(OUTCOMES, json={"outcomes": [outcome]}, headers=PARTNER)
    assert answer.status_code == 422
    locations = [detail["loc"] for detail in answer.json()["error"]["details"]]
    assert locations == [["body", "outcomes", 0, "date"]]


@pytest.mark.parametrize("value", ["0", "2014-13-45", "2014-09-02T00:00:00"])
def test_establishment_dates_are_iso_strings_only(lists_client: TestClient, value: str) -> None:
    risk = "/v1/establishments/chicago/2298459/risk"
    answer = lists_client.get(risk, params={"date": value}, headers=PARTNER)
    assert answer.status_code == 422
    assert [detail["loc"] for detail in answer.json()["error"]["details"]] == [["query", "date"]]


def test_database_down_is_503_with_a_clear_message() -> None:
    settings = make_settings(database_url="postgresql+psycopg://postgres@127.0.0.1:9/test")
    with TestClient(create_app(settings)) as client:
        response = client.get(DAILY, params={"date": "2014-08-30"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert client.get("/health/live").status_code == 200


def test_inspector_page_renders_rows_and_map(lists_client: TestClient) -> None:
    response = lists_client.get("/inspector", params={"city": "chicago", "date": "2014-08-30", "limit": 30})
    assert response.status_code == 200
    page = response.text
    assert page.count("<circle") >= 25 and page.count("<path") >= 77
    assert "/v1/inspections/lists/" in page and "format=csv" in page
    assert "@media print" in page
    assert (
        "http://" not in page.replace("http://testserver", "") and "https://" not in page
    )  # nothing external
    bad = lists_client.get("/inspector", params={"date": "not-a-date"})
    assert bad.status_code == 422 and "not a date" in bad.text


def test_boston_is_served_beside_chicago_without_a_map(lists_client: TestClient) -> None:
    models = {model["name"]: model for model in lists_client.get("/v1/models").json()["models"]}
    assert {"boston-food-inspections", "chicago-food-inspections"} <= set(models)
    body = lists_client.get("/v1/inspections/boston/daily", params={"limit": 5}).json()
    assert body["date"] == "2014-01-01" and body["model"]["name"] == "boston-food-inspections"
    assert len(body["rows"]) == 5 and all(row["latitude"] is None for row in body["rows"])
    page = lists_client.get("/inspector", params={"city": "boston"})
    assert (
        page.status_code == 200
        and "<svg" not in page.text
        and body["rows"][0]["establishment_id"] in page.text
    )


def test_establishment_risk_sees_recorded_outcomes_as_the_list_does(lists_client: TestClient) -> None:
    def row_of(establishment: str) -> dict[str, object]:
        rows = lists_client.get(DAILY, params={"date": "2014-08-26", "limit": 7000}).json()["rows"]
        return next(row for row in rows if row["establishment_id"] == establishment)

    def risk(establishment: str) -> dict[str, object]:
        url = f"/v1/establishments/chicago/{establishment}/risk"
        answer = lists_client.get(url, params={"date": "2014-08-26"}, headers=PARTNER)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    chosen = str(
        lists_client.get(DAILY, params={"date": "2014-08-26", "limit": 1}).json()["rows"][0][
            "establishment_id"
        ]
    )
    before = risk(chosen)
    assert before["score"] == row_of(chosen)["score"]
    outcome = {"inspection_id": "risk-endpoint-1", "establishment_id": chosen, "date": "2014-08-25",
               "result": "Pass", "violations": ""}  # fmt: skip
    posted = lists_client.post(
        "/v1/inspections/chicago/outcomes", json={"outcomes": [outcome]}, headers=PARTNER
    )
    assert posted.status_code == 201
    after = risk(chosen)
    assert after["features"]["prior_inspections"] == before["features"]["prior_inspections"] + 1  # type: ignore[index]
    assert after["score"] == row_of(chosen)["score"] != before["score"]
