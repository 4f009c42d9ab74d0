"""When the prefetch is absent, the Patient and the blood lead results are read from the EHR's FHIR
server with the request's fhirAuthorization token: only for an allowlisted server (off by default),
against a real FHIR stub on 127.0.0.1 here."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cds_helpers import (
    KNOWN_CASE,
    PATIENT_ID,
    blood_lead,
    call,
    patient,
    searchset,
    stub_server,
    valid_outcome,
)
from fastapi.testclient import TestClient
from lead_helpers import ehr_key, ehr_token, lead_settings
from pydantic import ValidationError

from app.main import create_app
from app.platform.settings import Settings

ACCESS = {"access_token": "opaque-fhir-token", "token_type": "Bearer", "expires_in": 300,
          "scope": "user/Patient.read user/Observation.read", "subject": "civicrisk"}  # fmt: skip


def _fhir() -> dict[str, Any]:
    return {
        f"/fhir/Patient/{PATIENT_ID}": patient(),
        "/fhir/Observation?": searchset(blood_lead(7.5)),
    }


def test_an_allowlisted_fhir_server_is_read_when_the_prefetch_is_absent(tmp_path: Path) -> None:
    signer = ehr_key()
    with stub_server(_fhir()) as ehr:
        settings, _ = lead_settings(tmp_path, signer, cds_fhir_servers=f"{ehr.url}/fhir")
        with TestClient(create_app(settings)) as client:
            response = call(client, ehr_token(signer), fhirServer=f"{ehr.url}/fhir", fhirAuthorization=ACCESS)
            assert response.status_code == 200, response.text
            (card,) = response.json()["cards"]
            assert KNOWN_CASE in card["detail"]  # the fetched Observation counted, as a prefetched one would
            paths = [unquote(path) for path in ehr.paths()]
            assert paths[0] == f"/fhir/Patient/{PATIENT_ID}"
            assert paths[1].startswith(
                f"/fhir/Observation?patient={PATIENT_ID}&code=http://loinc.org|77307-7,"
            )
            assert all(headers["Authorization"] == "Bearer opaque-fhir-token" for _, headers in ehr.requests)
            # A prefetch that is sent is used as it is: nothing more is read.
            prefetch = {"patient": patient(), "bloodLead": searchset()}
            again = call(
                client, ehr_token(signer), prefetch, fhirServer=f"{ehr.url}/fhir", fhirAuthorization=ACCESS
            )
            assert again.status_code == 200 and len(ehr.requests) == 2


def test_a_fetched_patient_of_another_id_is_refused(tmp_path: Path) -> None:
    signer = ehr_key()
    routes = _fhir() | {f"/fhir/Patient/{PATIENT_ID}": patient(patient_id="someone-else")}
    with stub_server(routes) as ehr:
        settings, _ = lead_settings(tmp_path, signer, cds_fhir_servers=f"{ehr.url}/fhir")
        with TestClient(create_app(settings)) as client:
            response = call(client, ehr_token(signer), fhirServer=f"{ehr.url}/fhir", fhirAuthorization=ACCESS)
            assert "another patient" in valid_outcome(response, 422)[0]


def test_a_server_not_on_the_list_is_never_called(tmp_path: Path) -> None:
    signer = ehr_key()
    with stub_server(_fhir()) as ehr, stub_server(_fhir()) as listed:
        # The default (no server listed), and a list naming another server.
        for servers in ((), (f"{listed.url}/fhir",)):
            settings, _ = lead_settings(tmp_path / str(len(servers)), signer, cds_fhir_servers=servers)
            with TestClient(create_app(settings, load_models=False)) as client:
                response = call(
                    client, ehr_token(signer), fhirServer=f"{ehr.url}/fhir", fhirAuthorization=ACCESS
                )
                assert "prefetch.patient" in valid_outcome(response, 412)[0]
        assert ehr.requests == [] and listed.requests == []


def test_an_unreachable_fhir_server_is_412(tmp_path: Path) -> None:
    signer = ehr_key()
    with stub_server({}) as ehr:
        gone = ehr.url
    settings, _ = lead_settings(tmp_path, signer, cds_fhir_servers=f"{gone}/fhir")
    with TestClient(create_app(settings, load_models=False)) as client:
        response = call(client, ehr_token(signer), fhirServer=f"{gone}/fhir", fhirAuthorization=ACCESS)
        assert "could not be read" in valid_outcome(response, 412)[0]


@pytest.mark.parametrize("servers", ["http://ehr.example.org/fhir", "ftp://127.0.0.1/fhir"])
def test_a_fhir_server_must_be_https_or_loopback(servers: str) -> None:
    with pytest.raises(ValidationError, match="cds_fhir_servers"):
        Settings(cds_fhir_servers=servers)
