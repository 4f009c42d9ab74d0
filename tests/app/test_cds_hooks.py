"""CDS Hooks 2.0: discovery, the card and its FHIR R4 resources (validated with fhir.resources), the
prefetch (Patient and earlier blood lead Observations, used as Lead Safe's `lab[]` is), and the
refusals (OperationOutcome), a wrong patient above all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from app_helpers import REPO_ROOT
from cds_helpers import (
    KNOWN_CASE,
    PATIENT_ID,
    blood_lead,
    call_as_ehr,
    patient,
    searchset,
    valid_outcome,
    validate_fhir,
)
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from lead_helpers import SERVICE_URL, Keys, child_body, ehr_key, lead_settings

import training.config
from app.hospitals.cds_cards import card_origin
from app.hospitals.errors import OutsideArea
from app.hospitals.lead_risk import Home
from app.main import create_app
from training.lead.config import load_lead_config

LEAD_CONFIG = load_lead_config(REPO_ROOT / "data" / "sample" / "chicago" / "lead.toml")


@pytest.fixture(scope="module")
def signer() -> ec.EllipticCurvePrivateKey:
    return ehr_key()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, signer: ec.EllipticCurvePrivateKey
) -> Iterator[tuple[TestClient, Keys]]:
    settings, keys = lead_settings(tmp_path_factory.mktemp("cds"), signer)
    with TestClient(create_app(settings)) as client:
        yield client, keys


@pytest.fixture(scope="module")
def cds(served: tuple[TestClient, Keys]) -> TestClient:
    return served[0]


@pytest.fixture(scope="module")
def high_risk_line(cds: TestClient) -> str:
    """A home the served model puts in its high tier, found by scoring the city's own address points
    (whatever model is committed: no score is written into this test)."""
    service = cds.app.state.lead
    model = service.model()
    engine = service.engine(model)
    points = pd.read_csv(REPO_ROOT / "data" / "sample" / "chicago" / "address_points.csv.gz")
    born = date.today() - timedelta(days=200)
    for address in points["address"].dropna().sample(600, random_state=3):
        line = str(address).title()
        try:
            result = service.score(engine, model, born, date.today(), Home(address=line))
        except OutsideArea:
            continue
        if result.tier == "high":
            return line
    raise AssertionError("no home of 600 sampled is in the model's high tier")


def _answer(cds: TestClient, signer: Any, prefetch: Any) -> dict[str, Any]:
    response = call_as_ehr(cds, signer, prefetch)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_discovery_names_the_prefetch_and_the_population(cds: TestClient) -> None:
    (service,) = cds.get("/cds-services").json()["services"]
    assert (service["hook"], service["id"]) == ("patient-view", "lead-risk")
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    search = service["prefetch"]["bloodLead"]
    assert search.startswith("Observation?patient={{context.patientId}}&code=")
    for code in ("77307-7", "10368-9", "5671-3"):  # venous, capillary, unspecified blood lead
        assert f"http://loinc.org|{code}" in search
    usage = service["usageRequirements"]
    assert "Chicago" in usage and "under 3 years" in usage
    manifest = cds.app.state.lead.model().manifest
    assert ("synthetic" in usage) == bool(manifest.get("synthetic"))


def test_card_for_an_eligible_child(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    answer = _answer(cds, signer, {"patient": patient(), "bloodLead": searchset()})
    (card,) = answer["cards"]
    assert len(card["summary"]) < 140 and card["summary"].startswith("Lead exposure risk:")
    tier = card["summary"].split(":")[1].split()[0]
    assert card["indicator"] == {"high": "critical", "medium": "warning", "low": "info"}[tier]
    model = cds.app.state.lead.model()
    origin = card_origin(card["uuid"])
    assert origin is not None and (origin.uuid, origin.tier) == (card["uuid"], tier)
    source = card["source"]
    assert source["label"] == f"civicrisk Chicago lead-risk model {model.version}"
    assert source["url"] == f"{SERVICE_URL}/v1/models/{model.name}/card?version={model.version}"
    assert {"system", "code", "display"} <= set(source["topic"])
    assert "Why:" in card["detail"] and "blood lead test" in card["detail"]
    assert KNOWN_CASE not in card["detail"]
    # Links: absolute, to the model card and the city's lead programme page (from the lead config).
    assert all(
        link["type"] == "absolute" and urlsplit(link["url"]).scheme == "https" for link in card["links"]
    )
    assert [link["url"] for link in card["links"]] == [source["url"], LEAD_CONFIG.programme[1]]  # type: ignore[index]
    assert card["overrideReasons"] and all(
        r["display"] and r["code"] and r["system"] for r in card["overrideReasons"]
    )
    # The model card the card links to is served.
    assert cds.get(urlsplit(source["url"]).path, params={"version": model.version}).status_code == 200


def test_risk_assessment_is_valid_fhir_r4_and_matches_lead_safe(
    served: tuple[TestClient, Keys], signer: ec.EllipticCurvePrivateKey
) -> None:
    cds, keys = served
    born = date.today() - timedelta(days=200)
    answer = _answer(cds, signer, {"patient": patient(), "bloodLead": searchset(blood_lead(1.0))})
    (action,) = answer["systemActions"]
    assert action["type"] == "create"
    assessment = action["resource"]
    validate_fhir(assessment)
    assert assessment["status"] == "final" and assessment["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert {"reference": "Observation/bll-1"} in assessment["basis"]
    (prediction,) = assessment["prediction"]
    model = cds.app.state.lead.model()
    assert model.version in assessment["note"][0]["text"] and model.version in assessment["method"]["text"]
    tier = answer["cards"][0]["summary"].split(":")[1].split()[0]
    assert prediction["qualitativeRisk"]["coding"][0]["code"] == {"low": "low", "medium": "moderate",
                                                                  "high": "high"}[tier]  # fmt: skip
    assert prediction["whenPeriod"]["end"] == (born + timedelta(days=1096)).isoformat()
    # The same child through the Lead Safe route: the same engine, the same score.
    lead_safe = cds.post(
        "/v1/lead/risk", json=child_body(date_of_birth=born.isoformat()), headers={"X-API-Key": keys.lead}
    )
    assert lead_safe.status_code == 200, lead_safe.text
    assert abs(float(lead_safe.json()["risk_score"]) - prediction["probabilityDecimal"]) <= 0.0005


def test_high_risk_card_suggests_a_blood_lead_test_order(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, high_risk_line: str
) -> None:
    (card,) = _answer(cds, signer, {"patient": patient(line=high_risk_line), "bloodLead": None})["cards"]
    assert card["indicator"] == "critical"
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] and suggestion["uuid"] and suggestion["isRecommended"] is True
    (action,) = suggestion["actions"]
    order = action["resource"]
    validate_fhir(order)
    assert (action["type"], order["resourceType"], order["status"]) == ("create", "ServiceRequest", "draft")
    assert order["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert order["code"]["coding"][0] == {"system": "http://loinc.org", "code": "77307-7",
                                          "display": "Lead [Mass/volume] in Venous blood"}  # fmt: skip


def test_lower_tiers_suggest_nothing(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    (card,) = _answer(cds, signer, {"patient": patient()})["cards"]
    if card["indicator"] != "critical":
        assert "suggestions" not in card and "selectionBehavior" not in card


@pytest.mark.parametrize(
    ("observations", "known_case"),
    [
        ([blood_lead(6.2)], True),  # venous, at or above 5 µg/dL
        ([blood_lead(0.3, unit="umol/L", code="10368-9")], True),  # capillary, 0.3 µmol/L = 6.2 µg/dL
        ([blood_lead(5.0, code="5671-3")], True),  # blood, specimen not stated; the threshold itself
        ([blood_lead(4.9)], False),
        ([blood_lead(9.0, days_ago=-5)], False),  # dated after the visit: not earlier
        ([blood_lead(9.0, status="entered-in-error")], False),
        ([blood_lead(9.0, code="5674-7")], False),  # lead in urine: not a blood lead test
        ([blood_lead(2.0, obs_id="a"), blood_lead(7.0, obs_id="b")], True),
    ],
)
def test_earlier_blood_lead_results_are_read_as_lead_safe_labs(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, observations: list[dict[str, Any]], known_case: bool
) -> None:
    (card,) = _answer(cds, signer, {"patient": patient(), "bloodLead": searchset(*observations)})["cards"]
    assert (KNOWN_CASE in card["detail"]) is known_case
    assert ("not available to this service" in card["detail"]) is False


def test_an_absent_blood_lead_prefetch_is_said(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    (card,) = _answer(cds, signer, {"patient": patient()})["cards"]
    assert "Earlier blood lead results were not available to this service" in card["detail"]


@pytest.mark.parametrize(
    "prefetch",
    [
        {"patient": patient(patient_id="someone-else")},
        {"patient": {k: v for k, v in patient().items() if k != "id"}},
        {"patient": patient(), "bloodLead": searchset(blood_lead(1.0, patient_id="someone-else"))},
        {"patient": patient(), "bloodLead": {k: v for k, v in blood_lead(1.0).items() if k != "subject"}},
    ],
)
def test_a_resource_of_another_patient_is_refused_and_nothing_scored(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, prefetch: dict[str, Any]
) -> None:
    cards = cds.app.state.metrics.cds_cards
    before = sum(sample.value for metric in cards.collect() for sample in metric.samples)
    texts = valid_outcome(call_as_ehr(cds, signer, prefetch), 422)
    assert "another patient" in texts[0]
    after = sum(sample.value for metric in cards.collect() for sample in metric.samples)
    assert after == before


@pytest.mark.parametrize(
    "resource",
    [
        patient(days_old=1200),  # older than the model covers
        patient(line="99999 W Nowhere Ln"),  # not a known address
        patient(city="Evanston"),  # outside the city
        {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "2025"},  # no full birth date, no address
    ],
)
def test_ineligible_child_gets_no_cards(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, resource: Any
) -> None:
    response = call_as_ehr(cds, signer, {"patient": resource})
    assert response.status_code == 200 and response.json() == {"cards": []}


@pytest.mark.parametrize(("utc_hour", "cards"), [(3, 0), (7, 1)])
def test_a_childs_days_are_counted_in_the_citys_time_zone(
    cds: TestClient,
    signer: ec.EllipticCurvePrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    utc_hour: int,
    cards: int,
) -> None:
    """At 03:00 UTC on 7 December it is still 6 December in Chicago (lead.toml's [city].timezone): a
    child born on the 7th is not born yet there, so no card; at 07:00 UTC it is the 7th in Chicago too."""
    frozen = datetime(2026, 12, 7, utc_hour, tzinfo=UTC)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FrozenClock:
            return frozen.astimezone(tz)  # type: ignore[return-value]

    monkeypatch.setattr(training.config, "datetime", FrozenClock)
    newborn = patient() | {"birthDate": "2026-12-07"}
    response = call_as_ehr(cds, signer, {"patient": newborn})
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == cards


@pytest.mark.parametrize(
    "prefetch",
    [
        None,
        {"bloodLead": searchset()},
        {"patient": None},
        {"patient": {"resourceType": "OperationOutcome", "issue": []}},
    ],  # fmt: skip
)
def test_missing_patient_is_412(cds: TestClient, signer: ec.EllipticCurvePrivateKey, prefetch: Any) -> None:
    texts = valid_outcome(call_as_ehr(cds, signer, prefetch), 412)
    assert "prefetch.patient" in texts[0]


def test_wrong_hook_or_resource_is_422(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    texts = valid_outcome(call_as_ehr(cds, signer, {"patient": patient()}, hook="order-select"), 422)
    assert "must be 'patient-view'" in texts
    valid_outcome(call_as_ehr(cds, signer, {"patient": {"resourceType": "Observation"}}), 422)
    valid_outcome(call_as_ehr(cds, signer, {"patient": patient()}, context={}), 422)


def test_not_json_is_400_operation_outcome(cds: TestClient, signer: ec.EllipticCurvePrivateKey) -> None:
    from lead_helpers import ehr_token

    response = cds.post(
        "/cds-services/lead-risk",
        content=b"{not json",
        headers={"Authorization": f"Bearer {ehr_token(signer)}", "Content-Type": "application/json"},
    )
    valid_outcome(response, 400)


JUNK: list[Any] = [
    [],
    "Patient/example",
    {"resourceType": "Bundle", "entry": "x"},
    {"resourceType": "Bundle", "entry": [None, 1, {"resource": []}, {"resource": {"resourceType": "X"}}]},
    searchset({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/example"}}),
    searchset({**blood_lead(9.0), "valueQuantity": {"value": "9", "unit": "ug/dL"}}),
    searchset({**blood_lead(9.0), "valueQuantity": {"value": 9, "unit": []}}),
    searchset({**blood_lead(9.0), "effectiveDateTime": 20260101, "code": {"coding": "77307-7"}}),
    searchset({**blood_lead(9.0), "valueQuantity": None, "valueString": "<3.3 ug/dL"}),
    searchset({**blood_lead(9.0), "subject": "Patient/example"}),
]


@pytest.mark.parametrize("labs", JUNK)
def test_odd_blood_lead_prefetch_is_never_a_server_error(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, labs: Any
) -> None:
    response = call_as_ehr(cds, signer, {"patient": patient(), "bloodLead": labs})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        valid_outcome(response, 422)


@pytest.mark.parametrize("odd", [[], "x", 7, {"resourceType": "Patient", "id": PATIENT_ID, "address": "home"},
                                 {"resourceType": "Patient", "id": 7}])  # fmt: skip
def test_odd_patient_prefetch_is_refused_not_a_server_error(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, odd: Any
) -> None:
    response = call_as_ehr(cds, signer, {"patient": odd})
    assert response.status_code in (200, 412, 422), response.text
    if response.status_code != 200:
        valid_outcome(response, response.status_code)
