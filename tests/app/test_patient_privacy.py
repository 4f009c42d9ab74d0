"""Nothing of the patient is kept: hundreds of requests carrying unique markers in every field (on
/v1/lead/risk, the Lead Safe drop-in's /upload/insert/ with an OAuth token, and CDS Hooks), then a
search of every log line, the database (its OAuth tables too) and the data and models directories.
And the on-premises configuration: the same app with no city database (its keys in its own SQLite
file) and no outbound connection at all."""

from __future__ import annotations

import gzip
import logging
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from app_helpers import MODELS_DIR, REPO_ROOT
from cds_helpers import blood_lead, searchset
from fastapi.testclient import TestClient
from lead_helpers import SERVICE_URL, child_body, ehr_key, ehr_token, lead_settings, marked_body

from app.hospitals.oauth_clients import create_client
from app.main import create_app
from app.platform.logs import JsonFormatter
from app.platform.storage.repository import Repository

DATA_DIR = REPO_ROOT / "data" / "sample"


class Lines(logging.Handler):
    """Every log record of every logger, formatted exactly as the service writes it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _files(*roots: Path) -> dict[Path, tuple[int, int]]:
    return {
        p: (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in root.rglob("*") if p.is_file()
    }


def _text(path: Path) -> bytes:
    content = path.read_bytes()
    return gzip.decompress(content) if path.suffix == ".gz" else content


def test_no_marker_is_kept_anywhere(tmp_path: Path, all_logs: Lines) -> None:
    marker = f"ZQX{uuid.uuid4().hex[:10].upper()}"
    signer = ehr_key()
    settings, keys = lead_settings(tmp_path, signer)
    repository = Repository.open(settings.database_url)
    client_record, secret = create_client(repository, "Lurie Children's", ["lead"])  # the Lead Safe drop-in
    repository.engine.dispose()
    before = _files(DATA_DIR, MODELS_DIR)
    statuses: dict[int, int] = {}
    inserted: dict[int, int] = {}
    cards: list[str] = []
    with TestClient(create_app(settings)) as client:
        issued = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_record.id, str(secret))
        )
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        for index in range(100):
            response = client.post("/upload/insert/", json=marked_body(marker, index), headers=bearer)
            inserted[response.status_code] = inserted.get(response.status_code, 0) + 1
            if response.status_code != 200:
                assert marker not in response.text
        assert client.get("/get/406", headers=bearer).status_code == 404
        for index in range(300):
            response = client.post(
                "/v1/lead/risk", json=marked_body(marker, index), headers={"X-API-Key": keys.lead}
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                assert marker not in response.text  # errors never echo a value
        for index in range(50):
            line = f"1600 W Division St {marker}" if index % 2 else "1600 W Division St"  # half get cards
            home = {"use": "home", "line": [line, f"Apt {marker}"], "city": "Chicago", "state": "IL"}
            resource = {
                "resourceType": "Patient",
                "id": f"p-{marker}{index}",
                "birthDate": "2026-01-01",
                "name": [{"family": f"Fam{marker}{index}"}],
                "address": [home],
            }
            labs = searchset(
                blood_lead(6.0 + index % 3, patient_id=f"p-{marker}{index}", obs_id=f"o-{marker}{index}")
            )
            hook = {
                "hook": "patient-view",
                "hookInstance": f"{marker}-{index}",
                "context": {"patientId": f"p-{marker}{index}", "userId": f"Practitioner/{marker}"},
                "prefetch": {"patient": resource, "bloodLead": labs},
            }
            response = client.post(
                "/cds-services/lead-risk", json=hook, headers={"Authorization": f"Bearer {ehr_token(signer)}"}
            )
            assert response.status_code == 200
            cards.extend(card["uuid"] for card in response.json()["cards"])
        # Feedback on those cards, with the marker in every field a clinician or EHR could fill.
        feedback = [
            {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-12-06T10:00:00Z",
                "overrideReason": {
                    "reason": {"system": f"urn:{marker}", "code": f"{marker}{i}"},
                    "userComment": f"Mother {marker} says the flat was repainted",
                },
            }
            for i, card in enumerate(cards)
        ] + [
            {
                "card": f"{marker}-not-a-card",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-12-06T10:00:00Z",
            }
        ]
        token = ehr_token(signer, aud=f"{SERVICE_URL}/cds-services/lead-risk/feedback")
        response = client.post("/cds-services/lead-risk/feedback", json={"feedback": feedback},
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert response.status_code == 200 and response.json()["stored"] == len(cards) >= 20, response.text
        bad = {"feedback": [{"card": marker, "outcome": f"{marker}", "outcomeTimestamp": marker}]}
        token = ehr_token(signer, aud=f"{SERVICE_URL}/cds-services/lead-risk/feedback")
        refused = client.post(
            "/cds-services/lead-risk/feedback", json=bad, headers={"Authorization": f"Bearer {token}"}
        )
        assert refused.status_code == 422 and marker not in refused.text
    assert statuses[200] >= 50 and statuses[400] >= 50 and statuses[412] >= 50, statuses
    assert inserted[200] >= 20 and inserted[400] >= 20 and inserted[412] >= 20, inserted
    access = [orjson.loads(line) for line in all_logs.lines if '"civicrisk.access"' in line]
    lead_lines = [entry for entry in access if entry["route"] == "/v1/lead/risk"]
    assert len(lead_lines) == 300
    assert {entry["partner"] for entry in lead_lines} == {"Lurie Children's"}
    insert_lines = [entry for entry in access if entry["route"] == "/upload/insert/"]
    assert len(insert_lines) == 100 and {entry["partner"] for entry in insert_lines} == {"Lurie Children's"}
    assert set(lead_lines[0]) <= {"ts", "level", "logger", "message", "method", "route", "status", "model",
                                  "duration_ms", "partner"}  # fmt: skip
    leaked = [line for line in all_logs.lines if marker in line]
    assert not leaked, leaked[:3]
    database = tmp_path / "db.sqlite3"
    assert not database.exists() or marker.encode() not in database.read_bytes()
    with sqlite3.connect(database) as connection:  # the feedback is kept, by card, model and tier only
        rows = connection.execute(
            "SELECT card_uuid, tier, outcome, override_reason FROM cds_feedback"
        ).fetchall()
    assert len(rows) == len(cards) and {row[3] for row in rows} == {"other"}
    assert _files(DATA_DIR, MODELS_DIR) == before  # nothing written to the data or models directories
    for path in before:
        assert marker.encode() not in _text(path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes()


def test_on_premises_no_outbound_calls_no_city_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hospital runs the image with the city's published bundle and its own partner keys in the
    embedded SQLite file (the default database): nothing connects anywhere."""
    signer = ehr_key()
    # Every socket is refused below: the key checks (against the database, every second) and
    # everything else must stay inside the process and its files.
    settings, keys = lead_settings(tmp_path, signer)
    assert settings.database_url.startswith("sqlite:///")
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] or kwargs)
        raise OSError("outbound connection attempted in the on-premises test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/lead/risk", json=child_body(), headers={"X-API-Key": keys.lead})
        assert answer.status_code == 200, answer.text
        hook = {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p"},
                "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "birthDate": "2026-05-01",
                                         "address": [{"use": "home", "line": ["1600 W Division St"],
                                                      "city": "Chicago", "state": "IL"}]}}}  # fmt: skip
        cards = client.post(
            "/cds-services/lead-risk", json=hook, headers={"Authorization": f"Bearer {ehr_token(signer)}"}
        )
        assert cards.status_code == 200
        # With the defaults, neither a FHIR server named in the request nor a token's `jku` (with a
        # kid the service does not hold) makes it connect: the opt-in options are off.
        fetch = {"fhirServer": "https://ehr.example.org/fhir",
                 "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                       "scope": "user/Patient.read", "subject": "civicrisk"}}  # fmt: skip
        del hook["prefetch"]
        unfetched = client.post(
            "/cds-services/lead-risk",
            json=hook | fetch,
            headers={"Authorization": f"Bearer {ehr_token(signer)}"},
        )
        assert unfetched.status_code == 412
        jku = ehr_token(signer, headers={"kid": "unknown", "jku": "https://ehr.example.org/jwks"})
        assert (
            client.post(
                "/cds-services/lead-risk", json=hook, headers={"Authorization": f"Bearer {jku}"}
            ).status_code
            == 401
        )
        assert client.get("/health/ready").status_code == 200
    assert attempts == []
