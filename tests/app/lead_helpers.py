"""Shared by the hospital-endpoint tests: a lead-enabled app, keys with scopes, an EHR signing key."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from app_helpers import make_settings
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.platform.keys import create_key
from app.platform.settings import Settings
from app.platform.storage.repository import Repository

SERVICE_URL = "https://risk.example.org"
HOOK_URL = f"{SERVICE_URL}/cds-services/lead-risk"
ISSUER = "https://ehr.example.org"
KID = "ehr-key-1"


def child_body(**overrides: Any) -> dict[str, Any]:
    """A valid Lead Safe request for a child of about 7 months at a known Chicago address."""
    today = date.today()
    body: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(sep=" ", timespec="milliseconds"),
        "network_id": "Alliance Health",
        "clinic_id": "EF",
        "location_id": "examp_loc",
        "patient_id": "9000",
        "address1": "1600 W Division St",
        "address2": "Apt 2",
        "city": "Chicago",
        "state": "IL",
        "zip": "60622",
        "date_of_birth": (today - timedelta(days=210)).isoformat(),
        "gender": "F",
        "race": "2054-5",
        "ethnicity": "2186-5",
        "visit": [{"visit_id": 1234567891011121, "date": "2026-01-05 15:02:54.171-00:00", "location": "EF",
                   "provider": "John Doe"}],
        "lab": [{"lab_id": 1234567891011121, "type": "BLL", "date": (today - timedelta(days=30)).isoformat(),
                 "sample_type": "V", "result": "None Detected ug/dL"}],
    }  # fmt: skip
    return body | overrides


class Keys:
    """Three managed keys, one per scope, in the service's database (as `civicrisk keys create`)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        repository = Repository.open(database_url)
        _, self.lead = create_key(repository, "Lurie Children's", ["lead"])
        _, self.inspections = create_key(repository, "Food Co-op", ["inspections"])
        _, self.admin = create_key(repository, "City IT", ["admin"])
        repository.engine.dispose()


def ehr_key() -> ec.EllipticCurvePrivateKey:
    """An EHR's signing key as CDS Hooks 2.0 recommends it: ES384 (P-384)."""
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: Any, kid: str = KID, alg: str | None = "ES384") -> dict[str, Any]:
    """The public half of an EC or RSA private key as a JWK, as an EHR publishes it in its JWK Set."""
    algorithm = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    jwk |= {"kid": kid, "use": "sig"}
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def write_issuers(path: Path, key: Any, **issuer: Any) -> Path:
    """The trusted-issuers file with ISSUER and `key` (kid KID), plus any other issuer fields."""
    path.write_text(json.dumps({"issuers": {ISSUER: {"keys": [public_jwk(key)], **issuer}}}))
    return path


def ehr_token(
    key: Any, algorithm: str = "ES384", headers: dict[str, Any] | None = None, **claims: Any
) -> str:
    """A token as an EHR signs it (PyJWT): header alg, typ JWT, kid; claims iss, aud (the hook's
    URL), iat, exp (5 minutes), jti. `headers` and `claims` override; a None value drops the field."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": HOOK_URL, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    payload |= claims
    header = {"kid": KID, "typ": "JWT"} | (headers or {}) if algorithm != "none" else None
    if header is not None:
        header = {k: v for k, v in header.items() if v is not None}
        header.setdefault("typ", "")  # PyJWT adds typ JWT unless told "" (then it leaves it out)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm,
                      headers=header)  # fmt: skip


def lead_settings(tmp: Path, key: ec.EllipticCurvePrivateKey, **overrides: Any) -> tuple[Settings, Keys]:
    keys = Keys(overrides.get("database_url", f"sqlite:///{tmp / 'db.sqlite3'}"))
    values: dict[str, Any] = {
        "cds_issuers_file": write_issuers(tmp / "issuers.json", key),
        "cds_service_url": SERVICE_URL,
        "database_url": keys.database_url,
    }
    settings = make_settings(**(values | overrides))
    return settings, keys


def marked_body(marker: str, index: int) -> dict[str, Any]:
    """A request whose every free-text field, id and the address line carry the marker."""
    born = (date.today() - timedelta(days=100 + index % 500)).isoformat()
    tag = f"{marker}{index:04d}"
    body = child_body(
        network_id=f"net-{tag}", clinic_id=f"clinic-{tag}", location_id=f"loc-{tag}", patient_id=f"MRN{tag}",
        address2=f"Apt {tag}", date_of_birth=born,
        visit=[{"visit_id": f"v-{tag}", "date": born, "location": f"loc-{tag}", "provider": f"Dr {tag}"}],
    )  # fmt: skip
    if index % 4 == 1:
        body["address1"] = f"{1600 + index % 7 * 2} W Division St {tag}"  # a marker inside the address line
    if index % 4 == 2:
        body["zip"] = f"6{index:04d}-{tag}"  # invalid: the error must name the field, not the value
    if index % 4 == 3:
        body["address1"] = f"9{index:04d} N {tag} Ave"  # not found: 412 must not echo it
    return body
