"""The Lead Safe drop-in: `/oauth/token` (client credentials, RFC 6749 errors; SMART Backend Services'
client assertions built as an EHR builds them), `POST /upload/insert/` with the bearer token, and
`GET /get/`, `GET /get/{id}`; in-process. The docs' curl flow on a real server is in
test_lead_safe_server.py."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from lead_helpers import Keys, child_body, ehr_key, lead_settings

from app.hospitals.oauth_clients import create_client
from app.main import create_app
from app.platform.settings import Settings
from app.platform.storage.repository import Repository

PUBLIC_URL = "https://risk.example.org"
TOKEN_URL = f"{PUBLIC_URL}/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Hospital:
    """A client with a secret, and a SMART backend client per algorithm, with their private keys."""

    def __init__(self, database_url: str) -> None:
        repository = Repository.open(database_url)
        client, secret = create_client(repository, "Lurie Children's", ["lead"])
        assert secret is not None
        self.client_id, self.secret = client.id, secret
        self.signers: dict[str, tuple[str, Any]] = {}
        for algorithm, key in (
            ("ES384", ec.generate_private_key(ec.SECP384R1())),
            ("RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ):
            kid = f"ehr-{algorithm.lower()}"
            maker = jwt.algorithms.ECAlgorithm if algorithm == "ES384" else jwt.algorithms.RSAAlgorithm
            jwk = json.loads(maker.to_jwk(key.public_key())) | {"kid": kid, "alg": algorithm, "use": "sig"}
            smart, none = create_client(repository, f"EHR {algorithm}", ["lead"], {"keys": [jwk]})
            assert none is None
            self.signers[algorithm] = (smart.id, (kid, key))
        repository.engine.dispose()

    def assertion(self, algorithm: str = "ES384", **claims: Any) -> str:
        """A client assertion as SMART Backend Services has an EHR build it."""
        client_id, (kid, key) = self.signers[algorithm]
        now = int(time.time())
        payload = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        } | claims
        headers = {"kid": claims.pop("kid", kid), "typ": "JWT"}
        payload.pop("kid", None)
        return jwt.encode(
            {k: v for k, v in payload.items() if v is not None}, key, algorithm, headers=headers
        )


@pytest.fixture(scope="module")
def drop_in(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Keys, Hospital, Settings]]:
    settings, keys = lead_settings(tmp_path_factory.mktemp("drop-in"), ehr_key(), public_url=PUBLIC_URL)
    hospital = Hospital(settings.database_url)
    with TestClient(create_app(settings)) as client:
        yield client, keys, hospital, settings


def token_of(client: TestClient, hospital: Hospital) -> str:
    answer = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(hospital.client_id, hospital.secret)
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def oauth_error(response: Any, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")
    description: str = body["error_description"]
    return description


def contract_errors(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"} and all(error["code"] == status for error in body["errors"])
    return [error["message"] for error in body["errors"]]


def test_the_token_answer_and_an_insert_equal_to_v1_lead_risk(drop_in: Any) -> None:
    client, keys, hospital, _ = drop_in
    # Lead Safe's call: GET, HTTP Basic, grant_type in a form body.
    answer = client.request(
        "GET",
        "/oauth/token",
        content="grant_type=client_credentials",
        headers=FORM,
        auth=(hospital.client_id, hospital.secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store" and answer.headers["pragma"] == "no-cache"
    issued = answer.json()
    assert issued["token_type"] == "bearer" and issued["expires_in"] == 3600 and issued["scope"] == "lead"
    assert set(issued) == {"access_token", "token_type", "expires_in", "scope"}
    # grant_type in the query, as a POST: the same.
    query = client.post(
        "/oauth/token?grant_type=client_credentials", auth=(hospital.client_id, hospital.secret)
    )
    assert query.status_code == 200 and query.json()["access_token"] != issued["access_token"]

    body = child_body()
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    inserted = client.post("/upload/insert/", json=body, headers=bearer)
    assert inserted.status_code == 200, inserted.text
    assert "content-location" not in inserted.headers
    reference = client.post("/v1/lead/risk", json=body, headers={"X-API-Key": keys.lead})
    assert reference.status_code == 200
    same = {k: v for k, v in inserted.json().items() if k != "timestamp"}
    assert same == {k: v for k, v in reference.json().items() if k != "timestamp"}
    # A partner key with the lead scope works on the drop-in too; one without it does not.
    assert client.post("/upload/insert/", json=body, headers={"X-API-Key": keys.lead}).status_code == 200
    contract_errors(client.post("/upload/insert/", json=body, headers={"X-API-Key": keys.inspections}), 403)


def test_get_lists_nothing_and_get_id_says_results_are_not_retained(drop_in: Any) -> None:
    client, _, hospital, _ = drop_in
    bearer = {"Authorization": f"Bearer {token_of(client, hospital)}"}
    listed = client.get("/get/", headers=bearer)
    assert listed.status_code == 200 and listed.json() == {"items": []}
    (message,) = contract_errors(client.get("/get/406", headers=bearer), 404)
    assert "not retained" in message
    for path in ("/get/", "/get/406"):
        assert contract_errors(client.get(path), 401)
        assert contract_errors(client.get(path, headers={"Authorization": "Bearer ct_not-a-token"}), 401)


def test_the_rfc_6749_errors(drop_in: Any) -> None:
    client, _, hospital, _ = drop_in
    good = (hospital.client_id, hospital.secret)
    grant = {"grant_type": "client_credentials"}
    oauth_error(
        client.post("/oauth/token", data=grant, auth=(hospital.client_id, "wrong")), 401, "invalid_client"
    )
    oauth_error(
        client.post("/oauth/token", data=grant, auth=("cc_nobody", hospital.secret)), 401, "invalid_client"
    )
    oauth_error(client.post("/oauth/token", data=grant), 401, "invalid_client")  # no client authentication
    assert "grant_type" in oauth_error(client.post("/oauth/token", auth=good), 400, "invalid_request")
    wrong = {"grant_type": "password", "username": "a", "password": "b"}
    oauth_error(client.post("/oauth/token", data=wrong, auth=good), 400, "unsupported_grant_type")
    # The secret only in the body, never in the URL; one authentication method; each parameter once.
    url = f"/oauth/token?grant_type=client_credentials&client_id={hospital.client_id}&client_secret=x"
    oauth_error(client.post(url), 400, "invalid_request")
    both = grant | {"client_id": hospital.client_id, "client_secret": hospital.secret}
    oauth_error(client.post("/oauth/token", data=both, auth=good), 400, "invalid_request")
    twice = "grant_type=client_credentials&grant_type=client_credentials"
    oauth_error(client.post("/oauth/token", content=twice, headers=FORM, auth=good), 400, "invalid_request")
    oauth_error(client.post("/oauth/token", json=grant, auth=good), 400, "invalid_request")  # not a form
    oauth_error(
        client.post("/oauth/token", data=grant | {"scope": "inspections"}, auth=good), 400, "invalid_scope"
    )
    # The client id and secret in the body are accepted (RFC 6749 §2.3.1).
    in_body = grant | {"client_id": hospital.client_id, "client_secret": hospital.secret}
    assert client.post("/oauth/token", data=in_body).status_code == 200


def test_bad_tokens_and_bodies_on_insert_are_contract_errors(drop_in: Any) -> None:
    client, _, hospital, _ = drop_in
    bearer = {"Authorization": f"Bearer {token_of(client, hospital)}"}
    contract_errors(client.post("/upload/insert/", json=child_body()), 401)
    contract_errors(
        client.post("/upload/insert/", json=child_body(), headers={"Authorization": "Bearer ct_" + "x" * 43}),
        401,
    )
    # 20,000 characters: a body of 19,000 two-byte characters (38,000 bytes) is within the limit
    # (refused for its unknown field, not its size); one of 20,001 characters is not.
    within = json.dumps({"x": "é" * 19_000}, ensure_ascii=False).encode()
    assert len(within) > 20_000
    headers = bearer | {"Content-Type": "application/json"}
    assert contract_errors(client.post("/upload/insert/", content=within, headers=headers), 400)
    over = json.dumps(child_body(address2="a" * 20_000)).encode()
    (message,) = contract_errors(client.post("/upload/insert/", content=over, headers=headers), 413)
    assert "20,000-character" in message
    huge = b"{" + b" " * 200_000 + b"}"  # refused by its Content-Length, unread
    contract_errors(client.post("/upload/insert/", content=huge, headers=headers), 413)
    contract_errors(client.post("/upload/insert/", content=b"{", headers=headers), 400)
    contract_errors(
        client.post("/upload/insert/", content=b"{}", headers=bearer | {"Content-Type": "text/plain"}), 415
    )
    problems = contract_errors(
        client.post("/upload/insert/", json=child_body(date_of_birth=None), headers=bearer), 400
    )
    assert problems == ["date_of_birth: missing required field"]


def test_smart_backend_services_assertions(drop_in: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, _, hospital, _ = drop_in

    def ask(assertion: str, scope: str | None = "system/RiskAssessment.rs", **more: str) -> Any:
        form = (
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
            | ({"scope": scope} if scope else {})
            | more
        )
        return client.post("/oauth/token", data=form)

    for algorithm in ("ES384", "RS384"):
        assertion = hospital.assertion(algorithm)
        answer = ask(assertion)
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "system/RiskAssessment.rs"
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert client.post("/upload/insert/", json=child_body(), headers=bearer).status_code == 200
        with caplog.at_level(logging.WARNING, logger="civicrisk.security"):
            replayed = ask(assertion)
        assert "used before" in oauth_error(replayed, 401, "invalid_client")
        event = [r for r in caplog.records if r.name == "civicrisk.security"][-1]
        assert event.client == hospital.signers[algorithm][0] and "jti" in event.reason  # type: ignore[attr-defined]
        assert assertion not in caplog.text
    assert ask(hospital.assertion(), scope="lead system/Patient.read").json()["scope"] == "lead"
    refused = {
        "wrong aud": hospital.assertion(aud=f"{PUBLIC_URL}/cds-services/lead-risk"),
        "expired": hospital.assertion(exp=int(time.time()) - 120),
        "too long-lived": hospital.assertion(exp=int(time.time()) + 3600),
        "sub is not iss": hospital.assertion(sub="someone-else"),
        "unknown kid": hospital.assertion(kid="not-registered"),
        "no jti": hospital.assertion(jti=None),
        "another client's key": hospital.assertion(
            "RS384", iss=hospital.signers["ES384"][0], sub=hospital.signers["ES384"][0]
        ),
    }
    for why, assertion in refused.items():
        assert ask(assertion).status_code == 401, why
    _, (kid, key) = hospital.signers["ES384"]
    client_id = hospital.signers["ES384"][0]
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": "x"}
    shared = jwt.encode(
        claims,
        "a shared secret, not a key pair: HMAC is refused" * 2,
        "HS384",
        headers={"kid": kid, "typ": "JWT"},
    )
    assert "RS384 or ES384" in oauth_error(ask(shared), 401, "invalid_client")
    oauth_error(ask(hospital.assertion(), client_assertion_type="urn:other"), 400, "invalid_request")
    oauth_error(ask(hospital.assertion(), scope="system/Patient.read"), 400, "invalid_scope")
    # The secret client cannot sign; a SMART client has no secret.
    oauth_error(
        client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "guess")),
        401,
        "invalid_client",
    )


def test_a_token_serves_every_worker_and_revoking_the_client_revokes_it(tmp_path: Path) -> None:
    """Two apps on one database, as two workers or replicas: a token issued by one is honoured by the
    other, and the client's revocation (by another process's store) reaches both within a second."""
    settings, _ = lead_settings(tmp_path, ehr_key(), public_url=PUBLIC_URL)
    hospital = Hospital(settings.database_url)
    with (
        TestClient(create_app(settings, load_models=False)) as first,
        TestClient(create_app(settings, load_models=False)) as second,
    ):
        token = token_of(first, hospital)
        bearer = {"Authorization": f"Bearer {token}"}
        assert first.get("/get/", headers=bearer).status_code == 200
        assert second.get("/get/", headers=bearer).status_code == 200
        from app.platform.storage.oauth import OAuthStore

        repository = Repository.open(settings.database_url)
        assert OAuthStore(repository).revoke_client(hospital.client_id) is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and {
            first.get("/get/", headers=bearer).status_code,
            second.get("/get/", headers=bearer).status_code,
        } != {401}:
            time.sleep(0.2)
        assert first.get("/get/", headers=bearer).status_code == 401
        assert second.get("/get/", headers=bearer).status_code == 401
        oauth_error(
            first.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(hospital.client_id, hospital.secret),
            ),
            401,
            "invalid_client",
        )
        with repository.engine.connect() as connection:  # its tokens are gone from the database
            import sqlalchemy as sa

            assert connection.execute(sa.text("SELECT count(*) FROM oauth_tokens")).scalar() == 0
        repository.engine.dispose()


def test_an_expired_token_is_refused(drop_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, hospital, _ = drop_in
    token = token_of(client, hospital)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/get/", headers=bearer).status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    contract_errors(client.get("/get/", headers=bearer), 401)


def test_smart_configuration_names_the_token_endpoint(drop_in: Any, tmp_path: Path) -> None:
    client, _, _, _ = drop_in
    found = client.get("/.well-known/smart-configuration")
    assert found.status_code == 200
    document = found.json()
    assert document["token_endpoint"] == TOKEN_URL
    assert document["grant_types_supported"] == ["client_credentials"]
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    settings, _ = lead_settings(tmp_path, ehr_key(), cds_service_url=None, cds_issuers_file=None)
    with TestClient(create_app(settings, load_models=False)) as unconfigured:
        assert unconfigured.get("/.well-known/smart-configuration").status_code == 404
