"""POST /v1/lead/risk: the Chicago Lead Safe API contract, key scopes, and partner keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from app_helpers import PARTNER
from fastapi.testclient import TestClient
from lead_helpers import Keys, child_body, ehr_key, lead_settings
from sqlalchemy.engine import make_url

from app.main import create_app
from civicrisk.cli import main as cli_main

URL = "/v1/lead/risk"
RESPONSE_FIELDS = {
    "version", "timestamp", "network_id", "clinic_id", "location_id", "patient_id", "risk_score",
    "risk_score_notes",
}  # fmt: skip


@pytest.fixture(scope="module")
def lead_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Keys]]:
    settings, keys = lead_settings(tmp_path_factory.mktemp("lead"), ehr_key())
    with TestClient(create_app(settings)) as client:
        yield client, keys


def post(client: TestClient, key: str, body: Any) -> Any:
    return client.post(URL, json=body, headers={"X-API-Key": key})


def errors(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"}
    assert all(error["code"] == status for error in body["errors"])
    return [error["message"] for error in body["errors"]]


def test_scores_a_child_in_the_contract_shape(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    response = post(client, keys.lead, child_body())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == RESPONSE_FIELDS
    assert answer["patient_id"] == "9000" and answer["clinic_id"] == "EF"
    assert answer["network_id"] == "Alliance Health" and answer["location_id"] == "examp_loc"
    assert isinstance(answer["risk_score"], str) and 0 < float(answer["risk_score"]) < 1
    assert len(answer["risk_score"].split(".")[1]) == 3
    notes = answer["risk_score_notes"].split("; ")
    assert notes[0].split(":")[0] in ("High risk", "Medium risk", "Low risk")
    assert any(note.startswith(("raises risk", "lowers risk")) for note in notes)
    assert "log-odds" not in answer["risk_score_notes"]  # plain words


def test_coordinates_skip_the_address_and_integer_ids_are_echoed(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    body = child_body(latitude=41.9034, longitude=-87.6678, patient_id=9000)
    for name in ("address1", "address2", "city", "state", "zip"):
        del body[name]
    answer = post(client, keys.lead, body).json()
    assert answer["patient_id"] == 9000
    same = post(client, keys.lead, child_body()).json()
    assert abs(float(answer["risk_score"]) - float(same["risk_score"])) < 0.01  # the same home


def test_race_and_ethnicity_do_not_change_the_score(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    scores = {
        post(client, keys.lead, child_body(race=race, ethnicity=ethnicity, gender=gender)).json()[
            "risk_score"
        ]
        for race, ethnicity, gender in (
            ("2054-5", "2186-5", "F"),
            ("2106-3", "2135-2", "M"),
            ("UNK", "UNK", "U"),
        )
    }
    assert len(scores) == 1


@pytest.mark.parametrize(
    "field",
    ["timestamp", "network_id", "clinic_id", "location_id", "patient_id", "address1", "city", "state", "zip",
     "date_of_birth", "gender", "race", "ethnicity"],
)  # fmt: skip
def test_each_missing_required_field_is_named(lead_app: tuple[TestClient, Keys], field: str) -> None:
    client, keys = lead_app
    body = child_body()
    del body[field]
    assert errors(post(client, keys.lead, body), 400) == [f"{field}: missing required field"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timestamp": "yesterday-ish"}, "timestamp: not an RFC 3339 timestamp"),
        ({"timestamp": "2999-01-01 00:00:00.000-00:00"}, "timestamp: in the future"),
        ({"date_of_birth": "03/17/2025"}, "date_of_birth: not a date in yyyy-mm-dd form"),
        ({"date_of_birth": "2025-02-30"}, "date_of_birth: not a date in yyyy-mm-dd form"),
        ({"date_of_birth": (date.today() + timedelta(days=20)).isoformat()}, "date_of_birth: after the"),
        ({"expected_due_date": "soon"}, "expected_due_date: not a date in yyyy-mm-dd form"),
        (
            {"expected_due_date": (date.today() + timedelta(days=400)).isoformat()},
            "expected_due_date: more than",
        ),
        ({"gender": "X"}, "gender: not one of F, M, U"),
        ({"race": "Black"}, "race: not one of"),
        ({"ethnicity": "2135-X"}, "ethnicity: not one of"),
        ({"zip": "6062"}, "zip: must be 5 digits"),
        ({"patient_id": ["9000"]}, "patient_id: must be text"),
        ({"address1": 1600}, "address1: must be text"),
        ({"address2": "x" * 300}, "address2: longer than 200 characters"),
        ({"latitude": 41.9}, "latitude, longitude: send both or neither"),
        ({"latitude": 141.9, "longitude": -87.6}, "latitude: must be between"),
        ({"longitude": "west", "latitude": 41.9}, "longitude: must be a number"),
        ({"visit": {"visit_id": 1}}, "visit: must be a list"),
        ({"visit": [{"date": "later"}]}, "visit[0].date: not a date or RFC 3339 timestamp"),
        ({"visit": [{"doctor": "x"}]}, "visit[0].doctor: unknown field"),
        ({"lab": [{"type": "CBC", "date": "2025-01-01", "result": "1"}]}, "lab[0].type: must be BLL"),
        ({"lab": [{"type": "BLL", "date": "2025-01-01", "sample_type": "X"}]}, "lab[0].sample_type: must be"),
        ({"lab": [{"type": "BLL", "date": "Jan 1"}]}, "lab[0].date: missing, or not a date"),
        ({"lab": [{"type": "BLL", "date": "2025-01-01", "result": "high"}]}, "lab[0].result: not a number"),
        ({"mrn": "123"}, "mrn: unknown field"),
    ],
)
def test_each_invalid_field_is_named_without_its_value(
    lead_app: tuple[TestClient, Keys], overrides: dict[str, Any], message: str
) -> None:
    client, keys = lead_app
    found = errors(post(client, keys.lead, child_body(**overrides)), 400)
    assert any(text.startswith(message) for text in found), found
    for value in overrides.values():
        if isinstance(value, str) and len(value) > 3:
            assert all(value not in text for text in found)  # never echo the value sent


def test_every_problem_is_listed_at_once(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    found = errors(post(client, keys.lead, child_body(gender="Q", race="?", zip="x", timestamp=None)), 400)
    assert [text.split(":")[0] for text in found] == ["timestamp", "zip", "gender", "race"]


def test_not_json_or_not_an_object_is_400(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    bad = client.post(URL, content=b"{", headers={"X-API-Key": keys.lead, "Content-Type": "application/json"})
    assert errors(bad, 400)[0].startswith("Invalid JSON")
    assert errors(post(client, keys.lead, [child_body()]), 400) == ["body: must be a JSON object"]


def test_wrong_content_type_is_415_and_an_oversized_body_413(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    headers = {"X-API-Key": keys.lead}
    text = client.post(URL, content=b"{}", headers=headers | {"Content-Type": "text/plain"})
    assert errors(text, 415) == ["Content-Type must be application/json"]
    json_headers = headers | {"Content-Type": "application/json"}
    padded = child_body(address2="x" * 70_000)
    assert errors(client.post(URL, json=padded, headers=headers), 413) == ["body over 65536 bytes"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while the body streams in
        yield b'{"address2": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    streamed = client.post(URL, content=chunks(), headers=json_headers)
    assert errors(streamed, 413) == ["body over 65536 bytes"]


def test_child_over_the_model_age_is_412(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    old = (date.today() - timedelta(days=1096)).isoformat()
    assert errors(post(client, keys.lead, child_body(date_of_birth=old)), 412) == ["Child over 1 years-old"]
    # Two years old is still covered by the model (under 3): scored, as documented.
    two = (date.today() - timedelta(days=730)).isoformat()
    assert post(client, keys.lead, child_body(date_of_birth=two)).status_code == 200


def test_prenatal_visit_scores_the_expected_child(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    body = child_body(
        date_of_birth="1990-03-17", expected_due_date=(date.today() + timedelta(days=60)).isoformat()
    )
    answer = post(client, keys.lead, body).json()
    assert "expected child" in answer["risk_score_notes"]


def test_a_known_elevated_lab_is_flagged(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    lab = [
        {"lab_id": 1, "type": "BLL", "date": (date.today() - timedelta(days=9)).isoformat(), "result": "6.3"}
    ]
    notes = post(client, keys.lead, child_body(lab=lab)).json()["risk_score_notes"]
    assert notes.startswith("A blood lead result at or above 5")


@pytest.mark.parametrize(
    "overrides",
    [
        {"city": "Evanston"},
        {"state": "IN"},
        {"address1": "99999 W Nowhere Ln"},
        {"latitude": 40.1, "longitude": -88.2},  # Champaign
    ],
)
def test_address_outside_chicago_or_not_found_is_412(
    lead_app: tuple[TestClient, Keys], overrides: dict[str, Any]
) -> None:
    client, keys = lead_app
    assert errors(post(client, keys.lead, child_body(**overrides)), 412) == ["Address outside of Chicago"]


def test_keys_and_scopes(lead_app: tuple[TestClient, Keys]) -> None:
    client, keys = lead_app
    assert errors(client.post(URL, json=child_body()), 401)
    assert errors(post(client, "ck_000000000000_not-a-key-at-all", child_body()), 401)
    assert errors(post(client, keys.inspections, child_body()), 403) == [
        "this API key does not have the 'lead' scope"
    ]
    assert errors(post(client, keys.admin, child_body()), 403)
    # The environment's keys (CIVICRISK_API_KEYS) hold inspections and lead, as documented.
    assert client.post(URL, json=child_body(), headers=PARTNER).status_code == 200
    # Inspection scoring needs `inspections`; a lead-only key is refused there.
    score = "/v1/models/chicago-food-inspections/score"
    assert client.post(score, json={"records": [{}]}, headers={"X-API-Key": keys.lead}).status_code == 403
    assert (
        client.post(score, json={"records": [{}]}, headers={"X-API-Key": keys.inspections}).status_code == 200
    )
    lead_model = "/v1/models/chicago-lead-risk/score"
    assert (
        client.post(lead_model, json={"records": [{}]}, headers={"X-API-Key": keys.inspections}).status_code
        == 403
    )
    # A managed admin key may reload; an inspections key may not.
    assert client.post("/v1/admin/reload", headers={"X-API-Key": keys.admin}).status_code == 200
    assert client.post("/v1/admin/reload", headers={"X-API-Key": keys.inspections}).status_code == 403


def test_cli_creates_and_revokes_keys(
    lead_app: tuple[TestClient, Keys], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, keys = lead_app
    monkeypatch.setenv("CIVICRISK_DATABASE_URL", keys.database_url)  # the command works on the service's
    assert cli_main(["keys", "create", "--partner", "Rush", "--scope", "lead"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    new_key = printed[-1]
    database = Path(str(make_url(keys.database_url).database))
    assert new_key.startswith("ck_") and new_key.encode() not in database.read_bytes()  # only its digest
    key_id = new_key.split("_")[1]
    # The service reads the keys every second; here at once.
    client.app.state.partner_keys.refresh()  # type: ignore[attr-defined]
    assert post(client, new_key, child_body()).status_code == 200
    assert cli_main(["keys", "revoke", key_id]) == 0
    client.app.state.partner_keys.refresh()  # type: ignore[attr-defined]
    assert errors(post(client, new_key, child_body()), 401)
    assert cli_main(["keys", "revoke", "nope"]) == 2
