"""The EHR's JWT, as CDS Hooks 2.0 "Trusting CDS Clients" states it, with tokens signed by PyJWT and
`cryptography` as an EHR signs them (ES384 and RS384, kid, jku): every rule refused on its own, the
security log of a replay and of a wrong audience, issuer keys rotated without a restart, and the
opt-in JWKS fetch against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cds_helpers import FEEDBACK_URL, call, patient, stub_server, valid_outcome
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from lead_helpers import HOOK_URL, ISSUER, KID, SERVICE_URL, ehr_key, ehr_token, lead_settings, public_jwk

from app.hospitals import ehr_keys
from app.main import create_app

RSA_KID = "ehr-rsa-1"
PREFETCH = {"patient": patient()}


@pytest.fixture(scope="module")
def signer() -> ec.EllipticCurvePrivateKey:
    return ehr_key()


@pytest.fixture(scope="module")
def rsa_signer() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@pytest.fixture(scope="module")
def cds(
    tmp_path_factory: pytest.TempPathFactory,
    signer: ec.EllipticCurvePrivateKey,
    rsa_signer: rsa.RSAPrivateKey,
) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("jwt")
    settings, _ = lead_settings(tmp, signer)
    # The RSA key is listed without "alg", as many JWK Sets publish keys: RS384 must still verify.
    keys = [public_jwk(signer), public_jwk(rsa_signer, kid=RSA_KID, alg=None)]
    Path(settings.cds_issuers_file).write_text(json.dumps({"issuers": {ISSUER: {"keys": keys}}}))  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        yield client


def test_es384_and_rs384_tokens_are_accepted(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, rsa_signer: rsa.RSAPrivateKey
) -> None:
    assert call(cds, ehr_token(signer), PREFETCH).status_code == 200
    rs384 = ehr_token(rsa_signer, algorithm="RS384", headers={"kid": RSA_KID})
    assert call(cds, rs384, PREFETCH).status_code == 200
    # aud as an array holding the endpoint's URL (RFC 7519 allows both forms).
    assert call(cds, ehr_token(signer, aud=[HOOK_URL]), PREFETCH).status_code == 200


def _hs256(signer: Any, _: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": HOOK_URL, "iat": now, "exp": now + 300, "jti": "1"}
    return jwt.encode(claims, "a-shared-secret-of-enough-length!-0123456789", algorithm="HS256",
                      headers={"kid": KID})  # fmt: skip


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k, r: None, "missing bearer token"),
        (lambda k, r: "not.a.jwt", "not a well-formed JWT"),
        (lambda k, r: ehr_token(k) + "=", "not a well-formed JWT"),  # padded: not the one canonical form
        (lambda k, r: ehr_token(k) + ".x", "not a well-formed JWT"),
        (lambda k, r: ehr_token(None, algorithm="none"), "algorithm is not allowed"),
        (_hs256, "algorithm is not allowed"),
        (lambda k, r: ehr_token(k, headers={"kid": None}), "'kid'"),
        (lambda k, r: ehr_token(k, headers={"typ": None}), "typ 'JWT'"),
        (lambda k, r: ehr_token(k, headers={"typ": "at+jwt"}), "typ 'JWT'"),
        (lambda k, r: ehr_token(k, headers={"kid": "rotated-away"}), "not among the issuer's trusted keys"),
        (lambda k, r: ehr_token(r, algorithm="RS384"), "does not match"),  # RSA token, EC key's kid
        (lambda k, r: ehr_token(k, aud="https://other.example.org"), "audience"),
        (lambda k, r: ehr_token(k, aud=SERVICE_URL), "audience"),  # the bare base URL
        (lambda k, r: ehr_token(k, aud=f"{SERVICE_URL}/cds-services"), "audience"),  # discovery's URL
        (lambda k, r: ehr_token(k, aud=f"{SERVICE_URL}{FEEDBACK_URL}"), "audience"),  # another endpoint
        (lambda k, r: ehr_token(k, exp=int(time.time()) - 120, iat=int(time.time()) - 300), "expired"),
        (lambda k, r: ehr_token(k, iat=int(time.time()) + 600, exp=int(time.time()) + 700), "future"),
        (lambda k, r: ehr_token(k, exp=int(time.time()) + 10 * 365 * 86400), "lifetime"),  # ten years
        (lambda k, r: ehr_token(k, exp=int(time.time()) + 301), "lifetime"),  # just over 5 minutes
        (lambda k, r: ehr_token(k, iss="https://evil.example.org"), "issuer is not trusted"),
        (lambda k, r: ehr_token(k, headers={"crit": ["exp"]}), "extensions"),
        (lambda k, r: ehr_token(k, nbf=int(time.time()) + 600), "future"),
        (lambda k, r: ehr_token(k, exp=str(int(time.time()) + 60)), "must be numbers"),
        (lambda k, r: ehr_token(k, aud=[SERVICE_URL, "https://other.example.org"]), "audience"),
        (lambda k, r: ehr_token(k, jti=None), "'jti'"),
        (lambda k, r: ehr_token(k, jti=""), "'jti'"),
        (lambda k, r: ehr_token(k, iat=None), "'iat'"),
        (lambda k, r: ehr_token(k, exp=None), "'exp'"),
        (lambda k, r: ehr_token(ehr_key()), "signature"),  # a key the service does not trust, same kid
    ],
)
def test_jwt_rejections(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, rsa_signer: rsa.RSAPrivateKey, make: Any, reason: str
) -> None:
    response = call(cds, make(signer, rsa_signer), PREFETCH)
    texts = valid_outcome(response, 401)
    assert reason in texts[0]
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="civicrisk.security")
    return caplog


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        {key: getattr(record, key) for key in ("event", "client", "reason")}
        for record in caplog.records
        if record.name == "civicrisk.security"
    ]


def test_a_replayed_token_is_refused_and_logged_with_client_and_reason_only(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, security_log: pytest.LogCaptureFixture
) -> None:
    token = ehr_token(signer)
    assert call(cds, token, PREFETCH).status_code == 200
    assert "used before" in valid_outcome(call(cds, token, PREFETCH), 401)[0]
    assert _events(security_log) == [{"event": "ehr_token_refused", "client": ISSUER, "reason": "replayed"}]
    (record,) = [r for r in security_log.records if r.name == "civicrisk.security"]
    assert token not in str(vars(record)) and "jti" not in str(vars(record))


def test_a_wrong_audience_is_logged(
    cds: TestClient, signer: ec.EllipticCurvePrivateKey, security_log: pytest.LogCaptureFixture
) -> None:
    valid_outcome(call(cds, ehr_token(signer, aud=SERVICE_URL), PREFETCH), 401)
    assert _events(security_log) == [
        {"event": "ehr_token_refused", "client": ISSUER, "reason": "wrong_audience"}
    ]
    metrics = cds.get("/metrics").text
    assert 'civicrisk_security_events_total{reason="wrong_audience"}' in metrics


def test_the_max_lifetime_is_a_setting(tmp_path: Path) -> None:
    signer = ehr_key()
    settings, _ = lead_settings(tmp_path, signer, cds_token_max_lifetime_seconds=900)
    with TestClient(create_app(settings, load_models=False)) as client:
        ten_minutes = ehr_token(signer, exp=int(time.time()) + 600)
        assert call(client, ten_minutes, PREFETCH).status_code != 401
        assert call(client, ehr_token(signer, exp=int(time.time()) + 1000), PREFETCH).status_code == 401


def test_issuer_keys_rotate_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ehr_keys, "FILE_CHECK_SECONDS", 0.0)
    old, new = ehr_key(), ehr_key()
    settings, _ = lead_settings(tmp_path, old)
    issuers = Path(settings.cds_issuers_file)  # type: ignore[arg-type]
    with TestClient(create_app(settings, load_models=False)) as client:
        assert call(client, ehr_token(old), PREFETCH).status_code != 401
        assert call(client, ehr_token(new, headers={"kid": "key-2"}), PREFETCH).status_code == 401
        # The EHR adds its next key, then retires the old one: the file is edited, nothing restarted.
        both = [public_jwk(old), public_jwk(new, kid="key-2")]
        issuers.write_text(json.dumps({"issuers": {ISSUER: {"keys": both}}}))
        assert call(client, ehr_token(new, headers={"kid": "key-2"}), PREFETCH).status_code != 401
        issuers.write_text(json.dumps({"issuers": {ISSUER: {"keys": [public_jwk(new, kid="key-2")]}}}))
        assert call(client, ehr_token(old), PREFETCH).status_code == 401
        # A broken edit keeps the keys last read.
        issuers.write_text("{not json")
        assert call(client, ehr_token(new, headers={"kid": "key-2"}), PREFETCH).status_code != 401


def test_jwks_fetched_for_an_issuer_that_opts_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuer lists its JWKS URL (a local HTTP server here; https is required elsewhere): keys
    not in the file are fetched, cached, and fetched again for a kid the cache lacks (rotation)."""
    monkeypatch.setattr(ehr_keys, "JWKS_REFRESH_SECONDS", 0.0)
    in_file, published, rotated = ehr_key(), ehr_key(), ehr_key()
    jwks = {"keys": [public_jwk(published, kid="pub-1")]}
    with stub_server({"/jwks": lambda: jwks}) as ehr, stub_server({"/jwks": {"keys": []}}) as other:
        settings, _ = lead_settings(tmp_path, in_file)
        write = {"issuers": {ISSUER: {"keys": [public_jwk(in_file)], "jwks_urls": [f"{ehr.url}/jwks"]}}}
        Path(settings.cds_issuers_file).write_text(json.dumps(write))  # type: ignore[arg-type]
        with TestClient(create_app(settings, load_models=False)) as client:
            assert call(client, ehr_token(in_file), PREFETCH).status_code != 401  # the file's key: no fetch
            assert ehr.paths() == []
            token = ehr_token(published, headers={"kid": "pub-1", "jku": f"{ehr.url}/jwks"})
            assert call(client, token, PREFETCH).status_code != 401
            assert call(client, ehr_token(published, headers={"kid": "pub-1"}), PREFETCH).status_code != 401
            assert ehr.paths() == ["/jwks"]  # fetched once, then cached
            jwks["keys"].append(public_jwk(rotated, kid="pub-2"))  # the EHR publishes its next key
            assert call(client, ehr_token(rotated, headers={"kid": "pub-2"}), PREFETCH).status_code != 401
            assert ehr.paths() == ["/jwks", "/jwks"]
            # A jku that is not on the issuer's list is never fetched.
            elsewhere = ehr_token(ehr_key(), headers={"kid": "evil", "jku": f"{other.url}/jwks"})
            assert call(client, elsewhere, PREFETCH).status_code == 401
            assert other.paths() == []


def test_by_default_a_jku_is_never_fetched(tmp_path: Path) -> None:
    with stub_server({"/jwks": {"keys": []}}) as ehr:
        signer = ehr_key()
        settings, _ = lead_settings(tmp_path, signer)
        with TestClient(create_app(settings, load_models=False)) as client:
            token = ehr_token(ehr_key(), headers={"kid": "k", "jku": f"{ehr.url}/jwks"})
            assert (
                "not among the issuer's trusted keys" in valid_outcome(call(client, token, PREFETCH), 401)[0]
            )
        assert ehr.paths() == []


def test_a_jwks_url_must_be_https(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(
        json.dumps({"issuers": {ISSUER: {"keys": [], "jwks_urls": ["http://ehr.example.org/jwks"]}}})
    )
    with pytest.raises(ehr_keys.IssuersFileError, match="must be https"):
        ehr_keys.read_issuers(path)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, "unusable"),  # a shared secret
        ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "needs a 'kid'"),
    ],
)
def test_unusable_keys_are_refused_at_start(tmp_path: Path, key: dict[str, Any], problem: str) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": {ISSUER: {"keys": [key]}}}))
    with pytest.raises(ehr_keys.IssuersFileError, match=problem):
        ehr_keys.read_issuers(path)


def test_a_private_key_in_the_issuers_file_is_refused(tmp_path: Path) -> None:
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ehr_key())) | {"kid": "oops"}
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": {ISSUER: {"keys": [private]}}}))
    with pytest.raises(ehr_keys.IssuersFileError, match="private key"):
        ehr_keys.read_issuers(path)
