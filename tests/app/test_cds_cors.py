"""CORS on /cds-services*, for browser-based CDS clients: the configured origins only, each echoed
alone, never `*`, never credentials; nothing for other origins or other routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cds_helpers import URL, call, patient
from fastapi.testclient import TestClient
from lead_helpers import ehr_key, ehr_token, lead_settings
from pydantic import ValidationError

from app.main import create_app
from app.platform.settings import Settings

SANDBOX = "https://sandbox.cds-hooks.org"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    signer = ehr_key()
    settings, _ = lead_settings(
        tmp_path_factory.mktemp("cors"), signer, cds_allowed_origins=f"{SANDBOX}, http://localhost:3000"
    )
    client = TestClient(create_app(settings, load_models=False))
    client.signer = signer  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("path", ["/cds-services", URL, f"{URL}/feedback"])
def test_a_preflight_from_an_allowed_origin_is_answered(browser: TestClient, path: str) -> None:
    answer = browser.options(path, headers={"Origin": SANDBOX} | PREFLIGHT)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == SANDBOX
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "access-control-allow-credentials" not in answer.headers
    assert "Origin" in answer.headers["vary"]


def test_a_preflight_from_another_origin_gets_no_cors_header(browser: TestClient) -> None:
    answer = browser.options(URL, headers={"Origin": "https://evil.example.org"} | PREFLIGHT)
    assert answer.status_code == 403
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_calls_carry_the_allowed_origin_only(browser: TestClient) -> None:
    signer = browser.signer  # type: ignore[attr-defined]
    allowed = browser.post(
        URL, json={"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "example"},
                   "prefetch": {"patient": patient()}},
        headers={"Origin": "http://localhost:3000", "Authorization": f"Bearer {ehr_token(signer)}"},
    )  # fmt: skip
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-credentials" not in allowed.headers
    refused = browser.get("/cds-services", headers={"Origin": "https://evil.example.org"})
    assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    # A refusal (401) carries it too, so the page can read why.
    unauthorized = browser.post(URL, json={}, headers={"Origin": SANDBOX})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == SANDBOX


def test_other_routes_get_no_cors(browser: TestClient) -> None:
    answer = browser.options("/v1/lead/risk", headers={"Origin": SANDBOX} | PREFLIGHT)
    assert "access-control-allow-origin" not in answer.headers
    assert (
        "access-control-allow-origin" not in browser.get("/health/live", headers={"Origin": SANDBOX}).headers
    )


def test_no_origin_configured_no_cors(tmp_path: Path) -> None:
    signer = ehr_key()
    settings, _ = lead_settings(tmp_path, signer)
    with TestClient(create_app(settings, load_models=False)) as client:
        answer = client.options(URL, headers={"Origin": SANDBOX} | PREFLIGHT)
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-origin" not in call(client, ehr_token(signer)).headers


@pytest.mark.parametrize(
    "origins", ["*", "https://*.example.org", "https://sandbox.cds-hooks.org/", "sandbox.org"]
)
def test_a_wildcard_or_inexact_origin_is_refused_at_start(origins: str) -> None:
    with pytest.raises(ValidationError, match="cds_allowed_origins"):
        Settings(cds_allowed_origins=origins)
