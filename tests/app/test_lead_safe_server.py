"""The Lead Safe docs' curl flow against a real uvicorn server, with httpx: a client made by
`civicrisk keys create --client`, a token from `GET /oauth/token`, `POST /upload/insert/`, `GET /get/`;
a SMART backend client made with `--jwks`; and `civicrisk keys revoke` (another process) revoking the
client's tokens on the running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from app_helpers import REPO_ROOT, serve_process
from cryptography.hazmat.primitives.asymmetric import ec
from lead_helpers import child_body, marked_body

PUBLIC_URL = "https://risk.example.org"


def civicrisk(env: dict[str, str], *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("lead-safe-server")
    env = os.environ | {
        "CIVICRISK_DATABASE_URL": f"sqlite:///{folder / 'civicrisk.sqlite3'}",
        "CIVICRISK_KEYS_FILE": str(folder / "partner-keys.json"),
        "CIVICRISK_PUBLIC_URL": PUBLIC_URL,
    }
    env.pop("CIVICRISK_API_KEYS", None)
    log_path = folder / "server.log"
    with serve_process((), env, log_path, health="/health/live") as url:
        yield url, env, log_path


def test_the_lead_safe_docs_flow_then_revocation(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, log_path = server
    *said, client_id, secret = civicrisk(
        env, "keys", "create", "--partner", "Lurie Children's", "--scope", "lead", "--client"
    )
    assert client_id.startswith("cc_") and "shown once" in said[-1]
    with httpx.Client(base_url=url, timeout=60) as client:
        # GET --user CLIENT_ID:CLIENT_SECRET --data "grant_type=client_credentials" <url>/oauth/token
        answer = client.request(
            "GET",
            "/oauth/token",
            auth=(client_id, secret),
            content="grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200, answer.text
        issued = answer.json()
        assert (issued["token_type"], issued["expires_in"]) == ("bearer", 3600)
        bearer = {"Authorization": f"Bearer {issued['access_token']}"}
        # POST --header "Content-Type:application/json" --header "Authorization: Bearer TOKEN" FILE.JSON
        body = json.dumps(child_body()).encode()
        inserted = client.post(
            "/upload/insert/", content=body, headers=bearer | {"Content-Type": "application/json"}
        )
        assert inserted.status_code == 200, inserted.text
        result = inserted.json()
        assert set(result) == {
            "version",
            "timestamp",
            "network_id",
            "clinic_id",
            "location_id",
            "patient_id",
            "risk_score",
            "risk_score_notes",
        }
        assert 0 < float(result["risk_score"]) < 1 and "content-location" not in inserted.headers
        assert client.get("/get/", headers=bearer).json() == {"items": []}
        missing = client.get("/get/406", headers=bearer)
        assert missing.status_code == 404 and "not retained" in missing.json()["errors"][0]["message"]
        marker = f"QZV{uuid.uuid4().hex[:8]}"
        for index in range(8):
            sent = client.post("/upload/insert/", json=marked_body(marker, index), headers=bearer)
            assert sent.status_code in (200, 400, 412)
            assert sent.status_code == 200 or marker not in sent.text  # an answer echoes only the ids

        # Revoked from another process: the running server refuses the token within about a second.
        said = civicrisk(env, "keys", "revoke", client_id)
        assert "revoked" in said[-1] and "access tokens" in said[-1]
        deadline = time.monotonic() + 10
        while client.get("/get/", headers=bearer).status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = client.post(
            "/upload/insert/", content=body, headers=bearer | {"Content-Type": "application/json"}
        )
        assert refused.status_code == 401 and set(refused.json()) == {"errors"}
        again = client.get("/oauth/token?grant_type=client_credentials", auth=(client_id, secret))
        assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    listing = "\n".join(civicrisk(env, "keys", "list"))
    assert client_id in listing and "revoked" in listing and secret not in listing
    logged = log_path.read_text()
    assert marker not in logged and secret not in logged and issued["access_token"] not in logged


def test_a_smart_backend_client_registered_with_its_jwks(
    server: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, env, _ = server
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {
        "kid": "ehr-2026",
        "alg": "ES384",
    }
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    said = civicrisk(
        env,
        "keys",
        "create",
        "--partner",
        "Epic at Lurie",
        "--scope",
        "lead",
        "--client",
        "--jwks",
        str(tmp_path / "jwks.json"),
    )
    client_id = said[-1]
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{PUBLIC_URL}/oauth/token",
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    assertion = jwt.encode(claims, key, "ES384", headers={"kid": "ehr-2026", "typ": "JWT"})
    form = {
        "grant_type": "client_credentials",
        "scope": "system/RiskAssessment.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/oauth/token", data=form)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "system/RiskAssessment.rs"
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert client.post("/upload/insert/", json=child_body(), headers=bearer).status_code == 200
        replayed = client.post("/oauth/token", data=form)
        assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
