"""A CDS Hooks token is accepted once: a replayed one (same issuer and `jti`) is 401, in one process
and, with CIVICRISK_SHARED_STATE, on any other sharing the database (app/hospitals/replay.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from lead_helpers import ehr_key, ehr_token, lead_settings

from app.main import create_app

HOOK: dict[str, Any] = {
    "hook": "patient-view",
    "hookInstance": "replay-test",
    "context": {"patientId": "p"},
    "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "birthDate": "2026-05-01"}},
}


def _call(client: TestClient, token: str) -> int:
    answer = client.post("/cds-services/lead-risk", json=HOOK, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


def test_a_token_is_accepted_once_in_a_process(tmp_path: Path) -> None:
    signer = ehr_key()
    settings, _ = lead_settings(tmp_path, signer)
    with TestClient(create_app(settings, load_models=False)) as client:
        token = ehr_token(signer)
        assert _call(client, token) != 401
        replayed = client.post(
            "/cds-services/lead-risk", json=HOOK, headers={"Authorization": f"Bearer {token}"}
        )
        assert replayed.status_code == 401 and "used before" in replayed.text
        assert _call(client, ehr_token(signer)) != 401  # another token (another jti) is fine


def test_with_shared_state_a_token_used_on_one_replica_is_refused_on_another(tmp_path: Path) -> None:
    signer = ehr_key()
    settings, _ = lead_settings(tmp_path, signer)
    shared = settings.model_copy(update={"shared_state": True})
    first_app, second_app = create_app(shared, load_models=False), create_app(shared, load_models=False)
    with TestClient(first_app) as first, TestClient(second_app) as second:
        token = ehr_token(signer)
        assert _call(first, token) != 401
        assert _call(second, token) == 401
        unshared = create_app(settings, load_models=False)
        with TestClient(unshared) as alone:  # its own record: it has not seen the token
            assert _call(alone, token) != 401
