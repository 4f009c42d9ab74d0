"""CDS Hooks 2.0: discovery, cards from a FHIR R4 Patient, and the EHR's JWT (every rejection)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from lead_helpers import ISSUER, ehr_key, ehr_token, lead_settings

from app.main import create_app

URL = "/cds-services/lead-risk"


@pytest.fixture(scope="module")
def signer() -> ec.EllipticCurvePrivateKey:
    return ehr_key()


@pytest.fixture(scope="module")
def cds(tmp_path_factory: pytest.TempPathFactory, signer: ec.EllipticCurvePrivateKey) -> Iterator[TestClient]:
    settings, _ = lead_settings(tmp_path_factory.mktemp("cds"), signer)
    with TestClient(create_app(settings)) as client:
        yield client


def patient(days_old: int = 200, line: str = "1600 W Division St", city: str = "Chicago") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "example",
        "birthDate": (date.today() - timedelta(days=days_old)).isoformat(),
        "address": [
            {"use": "old", "line": ["1 E 113th St"], "city": "Chicago", "state": "IL"},
            {"use": "home", "line": [line, "Apt 2"], "city": city, "state": "IL", "postalCode": "60622"},
        ],
    }


def call(client: TestClient, token: str | None, prefetch: Any = None, **body: Any) -> Any:
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "example"},
    } | body
    if prefetch is not None:
        request["prefetch"] = prefetch
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(URL, json=request, headers=headers)


def test_discovery(cds: TestClient) -> None:
    services = cds.get("/cds-services").json()["services"]
    assert services == [
        {
            "hook": "patient-view",
            "id": "lead-risk",
            "title": services[0]["title"],
            "description": services[0]["description"],
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
        }
    ]


def test_card_for_an_eligible_child(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    response = call(cds, ehr_token(signer), {"patient": patient()})
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert len(card["summary"]) < 140 and card["summary"].startswith("Lead exposure risk:")
    assert card["indicator"] in ("info", "warning", "critical")
    tier = card["summary"].split(":")[1].split()[0]
    assert card["indicator"] == {"high": "critical", "medium": "warning", "low": "info"}[tier]
    assert card["source"]["label"].startswith("civicrisk Chicago lead-risk model")
    assert "Why:" in card["detail"]
    assert "- raises risk" in card["detail"] or "- lowers risk" in card["detail"]
    assert "blood lead test" in card["detail"]  # the recommended action


@pytest.mark.parametrize(
    "resource",
    [
        patient(days_old=1200),  # older than the model covers
        patient(line="99999 W Nowhere Ln"),  # not a known address
        patient(city="Evanston"),  # outside the city
        {"resourceType": "Patient", "birthDate": "2025"},  # no full birth date, no address
    ],
)
def test_ineligible_child_gets_no_cards(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, resource: Any
) -> None:
    response = call(cds, ehr_token(signer), {"patient": resource})
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_missing_prefetch_is_412(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    response = call(cds, ehr_token(signer))
    assert response.status_code == 412 and "prefetch.patient" in response.json()["error"]["message"]


def test_wrong_hook_or_resource_is_422(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    assert call(cds, ehr_token(signer), {"patient": patient()}, hook="order-select").status_code == 422
    assert call(cds, ehr_token(signer), {"patient": {"resourceType": "Observation"}}).status_code == 422


def _hs256(signer: ec.EllipticCurvePrivateKey) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "https://risk.example.org", "iat": now, "exp": now + 300, "jti": "1"}
    return jwt.encode(
        claims, "a-shared-secret-of-enough-length!", algorithm="HS256", headers={"kid": "ehr-key-1"}
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: None, "missing bearer token"),
        (lambda k: "not.a.jwt", "not a well-formed JWT"),
        (lambda k: ehr_token(None, algorithm="none"), "algorithm is not allowed"),
        (_hs256, "algorithm is not allowed"),
        (lambda k: ehr_token(k, aud="https://other.example.org"), "audience"),
        (lambda k: ehr_token(k, exp=int(time.time()) - 120, iat=int(time.time()) - 600), "expired"),
        (lambda k: ehr_token(k, iat=int(time.time()) + 600, exp=int(time.time()) + 900), "future"),
        (lambda k: ehr_token(k, iss="https://evil.example.org"), "issuer is not trusted"),
        (lambda k: ehr_token(k, jti=None), "'jti'"),
        (lambda k: ehr_token(ehr_key()), "do not verify"),  # a key the service does not trust
    ],
)
def test_jwt_rejections(cds: TestClient, signer: ec.EllipticCurvePrivateKey, make: Any, reason: str) -> None:
    response = call(cds, make(signer), {"patient": patient()})
    assert response.status_code == 401, response.text
    assert reason in response.json()["error"]["message"]


def test_base_url_audience_is_accepted(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    assert (
        call(cds, ehr_token(signer, aud="https://risk.example.org"), {"patient": patient()}).status_code
        == 200
    )
