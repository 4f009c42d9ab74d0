"""Shared by the CDS Hooks tests: FHIR resources as an EHR sends them, the call, FHIR validation
with fhir.resources (R4B models), and a real HTTP server on 127.0.0.1 standing in for an EHR's
JWKS endpoint or FHIR server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from lead_helpers import ehr_token

URL = "/cds-services/lead-risk"
FEEDBACK_URL = f"{URL}/feedback"
PATIENT_ID = "example"
KNOWN_CASE = "A blood lead result at or above 5 µg/dL is already on record"


def patient(
    days_old: int = 200, line: str = "1600 W Division St", city: str = "Chicago", patient_id: str = PATIENT_ID
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "birthDate": (date.today() - timedelta(days=days_old)).isoformat(),
        "address": [
            {"use": "old", "line": ["1 E 113th St"], "city": "Chicago", "state": "IL"},
            {"use": "home", "line": [line, "Apt 2"], "city": city, "state": "IL", "postalCode": "60622"},
        ],
    }


def blood_lead(
    result: float,
    unit: str = "ug/dL",
    code: str = "77307-7",
    days_ago: int = 30,
    patient_id: str = PATIENT_ID,
    status: str = "final",
    obs_id: str = "bll-1",
) -> dict[str, Any]:
    """A blood lead Observation as a lab result reaches the EHR's FHIR server."""
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],  # fmt: skip
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": (date.today() - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": result, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def hook_body(prefetch: Any = None, patient_id: str = PATIENT_ID, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
    } | fields
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def call(client: TestClient, token: str | None, prefetch: Any = None, **fields: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(URL, json=hook_body(prefetch, **fields), headers=headers)


def call_as_ehr(client: TestClient, signer: Any, prefetch: Any = None, **fields: Any) -> Any:
    return call(client, ehr_token(signer), prefetch, **fields)


def validate_fhir(resource: dict[str, Any]) -> Any:
    """The resource parsed by fhir.resources' R4B model of its type: raises on anything invalid."""
    model = get_fhir_model_class(resource["resourceType"])
    return model.model_validate(resource)


def valid_outcome(response: Any, status: int) -> list[str]:
    """A CDS Hooks refusal: the status and an OperationOutcome; the texts of its issues."""
    assert response.status_code == status, response.text
    outcome = response.json()
    validate_fhir(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    return [issue["details"]["text"] for issue in outcome["issue"]]


class StubServer:
    """A real HTTP server on 127.0.0.1 answering GETs from `routes` (path with query -> JSON), and
    recording every request's path and headers."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stub.requests.append((self.path, dict(self.headers)))
                found = stub.answer(self.path)
                body = json.dumps(found[1]).encode()
                self.send_response(found[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> tuple[int, Any]:
        for prefix, value in self.routes.items():
            if path.startswith(prefix):
                return (200, value() if isinstance(value, Callable) else value)  # type: ignore[arg-type]
        return 404, {"resourceType": "OperationOutcome", "issue": []}

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@contextmanager
def stub_server(routes: dict[str, Any]) -> Iterator[StubServer]:
    stub = StubServer(routes)
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()
