"""CDS Hooks feedback: POST /cds-services/lead-risk/feedback, authenticated like the hook (its own
`aud`), kept by the card's model and tier without any patient data, counted in /metrics and summed
up by tier in GET /v1/models/{name}/feedback for the city's model team (admin key)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from app_helpers import ADMIN, PARTNER
from cds_helpers import FEEDBACK_URL, call_as_ehr, patient, valid_outcome
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from lead_helpers import SERVICE_URL, ehr_key, ehr_token, lead_settings

from app.hospitals.cds_cards import card_uuid
from app.main import create_app

STAMP = "2026-12-06T10:05:31Z"


@pytest.fixture(scope="module")
def signer() -> ec.EllipticCurvePrivateKey:
    return ehr_key()


@pytest.fixture(scope="module")
def cds(tmp_path_factory: pytest.TempPathFactory, signer: ec.EllipticCurvePrivateKey) -> Iterator[TestClient]:
    settings, _ = lead_settings(tmp_path_factory.mktemp("feedback"), signer)
    with TestClient(create_app(settings)) as client:
        yield client


def send(client: TestClient, signer: Any, *feedback: dict[str, Any], aud: str | None = None) -> Any:
    token = ehr_token(signer, aud=aud or f"{SERVICE_URL}{FEEDBACK_URL}")
    return client.post(
        FEEDBACK_URL, json={"feedback": list(feedback)}, headers={"Authorization": f"Bearer {token}"}
    )


def accepted(card: str) -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "s-1"}],
        "outcomeTimestamp": STAMP,
    }


def overridden(card: str, reason: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": STAMP}
    if reason is not None:
        entry["overrideReason"] = reason
    return entry


def _card(cds: TestClient, signer: Any) -> dict[str, Any]:
    response = call_as_ehr(cds, signer, {"patient": patient()})
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()["cards"][0]
    return card


def test_feedback_is_counted_by_tier(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    model = cds.app.state.lead.model()
    card = _card(cds, signer)
    tier = card["summary"].split(":")[1].split()[0]
    offered = card["overrideReasons"][0]
    answer = send(cds, signer, overridden(card["uuid"], {"reason": offered, "userComment": "seen it"}))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 1, "repeated": 0, "unknown_cards": 0}
    # Sent again (a client's retry): counted once.
    assert send(cds, signer, overridden(card["uuid"])).json() == {
        "stored": 0,
        "repeated": 1,
        "unknown_cards": 0,
    }
    # Cards of each tier of this model, as the EHR would report them.
    high = [card_uuid(model.name, model.version, "high") for _ in range(3)]
    answer = send(
        cds, signer, accepted(high[0]), accepted(high[1]), overridden(high[2]), overridden("not-ours")
    )
    assert answer.json() == {"stored": 3, "repeated": 0, "unknown_cards": 1}
    summary = cds.get(f"/v1/models/{model.name}/feedback", headers=ADMIN)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["tiers"]["high"] == {
        "accepted": 2,
        "overridden": 1,
        "accept_rate": 0.6667,
        "override_rate": 0.3333,
    }
    assert body["tiers"][tier]["overridden"] >= 1
    assert body["override_reasons"][offered["code"]] == 1
    assert body["versions"] == {model.version: body["feedback"]}
    metrics = cds.get("/metrics").text
    assert (
        f'civicrisk_cds_feedback_total{{model="{model.name}",outcome="accepted",tier="high"}} 2.0' in metrics
    )
    assert f'civicrisk_cds_cards_total{{model="{model.name}",tier="{tier}"}}' in metrics


def test_the_summary_is_for_the_model_team(cds: TestClient) -> None:
    name = cds.app.state.lead.model().name
    assert cds.get(f"/v1/models/{name}/feedback").status_code == 401
    assert cds.get(f"/v1/models/{name}/feedback", headers=PARTNER).status_code == 403
    assert cds.get("/v1/models/no-such-model/feedback", headers=ADMIN).status_code == 404


def test_feedback_needs_a_token_for_the_feedback_endpoint(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey
) -> None:
    entry = overridden(card_uuid("m", "v", "low"))
    valid_outcome(cds.post(FEEDBACK_URL, json={"feedback": [entry]}), 401)
    hook_audience = send(cds, signer, entry, aud=f"{SERVICE_URL}/cds-services/lead-risk")
    assert "audience" in valid_outcome(hook_audience, 401)[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [{"outcome": "overridden", "outcomeTimestamp": STAMP}]}, "feedback[0].card"),
        ({"feedback": [{"card": "c", "outcome": "seen", "outcomeTimestamp": STAMP}]}, "feedback[0].outcome"),
        ({"feedback": [{"card": "c", "outcome": "overridden"}]}, "feedback[0].outcomeTimestamp"),
        ({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": STAMP}]},
         "feedback[0].acceptedSuggestions"),
        ({"feedback": [overridden("c", {"reason": "typed by hand"})]}, "feedback[0].overrideReason.reason"),
    ],
)  # fmt: skip
def test_bad_feedback_is_422_naming_the_field(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, body: dict[str, Any], field: str
) -> None:
    token = ehr_token(signer, aud=f"{SERVICE_URL}{FEEDBACK_URL}")
    response = cds.post(FEEDBACK_URL, json=body, headers={"Authorization": f"Bearer {token}"})
    valid_outcome(response, 422)
    expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", [])]
    assert field in expressions
