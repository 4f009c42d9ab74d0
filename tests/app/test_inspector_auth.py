"""The inspectors' routes with CIVICRISK_INSPECTOR_AUTH=key: a key with the `inspections` scope, sent
as X-API-Key, Bearer or the password of HTTP Basic (what a browser sends after its prompt); open by
default. A refused request issues and stores no list."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from app_helpers import PARTNER, make_settings
from fastapi.testclient import TestClient
from lead_helpers import Keys

from app.main import create_app
from app.platform.storage.tables import issued_lists

DAILY = "/v1/inspections/chicago/daily?date=2014-08-30&limit=5"
PAGE = "/inspector?city=chicago&date=2014-08-30&limit=5"


def basic(password: str, user: str = "inspector") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Service:
    def __init__(self, client: TestClient, keys: Keys, database: Path) -> None:
        self.client, self.keys, self.database = client, keys, database

    def stored_lists(self) -> int:
        engine = sa.create_engine(f"sqlite:///{self.database}")
        try:
            with engine.connect() as connection:
                count = sa.select(sa.func.count()).select_from(issued_lists)
                return int(connection.execute(count).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("inspector-auth")
    database = tmp / "lists.sqlite3"
    keys = Keys(f"sqlite:///{database}")
    settings = make_settings(inspector_auth="key", database_url=keys.database_url)
    with TestClient(create_app(settings)) as client:
        # One list issued with a key, so the database exists and list 1 is there to be refused.
        first = client.get("/v1/inspections/chicago/daily?limit=3", headers={"X-API-Key": keys.inspections})
        assert first.status_code == 200 and first.headers["x-list-id"] == "1"
        yield Service(client, keys, database)


@pytest.mark.parametrize("url", [DAILY, PAGE, "/v1/inspections/lists/1"])
def test_without_a_key_is_401_with_a_basic_challenge_and_nothing_stored(closed: Service, url: str) -> None:
    before = closed.stored_lists()
    for headers in ({}, {"X-API-Key": "not-a-key-0123456789"}, basic("not-a-key-0123456789")):
        answer = closed.client.get(url, headers=headers)
        assert answer.status_code == 401, answer.text
        # Basic makes a browser ask for the key; the body is the one error shape, naming the ways in.
        assert answer.headers["www-authenticate"].startswith('Basic realm="civicrisk inspectors"')
        error = answer.json()["error"]
        assert error["code"] == "unauthorized" and "HTTP Basic" in error["message"]
    assert closed.stored_lists() == before


@pytest.mark.parametrize(
    "authorization",
    ["Basic", "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"\xff\xfe").decode(), "Digest x=1"],
)
def test_a_malformed_authorization_header_is_401_not_500(closed: Service, authorization: str) -> None:
    answer = closed.client.get(DAILY, headers={"Authorization": authorization})
    assert answer.status_code == 401, answer.text


def test_an_inspections_key_opens_every_inspector_route_by_each_way_of_sending_it(closed: Service) -> None:
    key = closed.keys.inspections
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}, basic(key), basic(key, user="")):
        listed = closed.client.get(DAILY, headers=headers)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["rows"]) == 5
        list_id = listed.headers["x-list-id"]
        as_csv = closed.client.get(f"/v1/inspections/lists/{list_id}?format=csv", headers=headers)
        assert as_csv.status_code == 200 and as_csv.text.count("\n") == 6
        page = closed.client.get(PAGE, headers=headers)
        assert page.status_code == 200 and page.text.count('class="tier') >= 5


def test_the_legacy_keys_hold_the_inspections_scope(closed: Service) -> None:
    assert closed.client.get(DAILY, headers=PARTNER).status_code == 200


@pytest.mark.parametrize("holder", ["lead", "admin"])
def test_a_key_without_the_inspections_scope_is_403(closed: Service, holder: str) -> None:
    before = closed.stored_lists()
    answer = closed.client.get(DAILY, headers=basic(getattr(closed.keys, holder)))
    assert answer.status_code == 403, answer.text
    assert "'inspections' scope" in answer.json()["error"]["message"]
    assert closed.stored_lists() == before


def test_the_access_log_names_the_partner_not_the_key(
    closed: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="civicrisk.access"):
        assert closed.client.get(DAILY, headers=basic(closed.keys.inspections)).status_code == 200
    lines = [record for record in caplog.records if record.name == "civicrisk.access"]
    assert lines and getattr(lines[-1], "partner", None) == "Food Co-op"
    assert all(closed.keys.inspections not in record.getMessage() + str(vars(record)) for record in lines)


def test_with_no_key_configured_the_closed_routes_answer_503(tmp_path: Path) -> None:
    settings = make_settings(
        inspector_auth="key",
        api_keys=(),
        database_url=f"sqlite:///{tmp_path / 'lists.sqlite3'}",
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get(DAILY)
    assert answer.status_code == 503
    assert "the inspectors' routes are closed" in answer.json()["error"]["message"]


def test_by_default_the_routes_are_open_and_ignore_any_authorization(tmp_path: Path) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'lists.sqlite3'}")
    with TestClient(create_app(settings)) as client:
        assert client.get(DAILY).status_code == 200
        assert client.get(DAILY, headers=basic("anything")).status_code == 200
        assert client.get(PAGE).status_code == 200
