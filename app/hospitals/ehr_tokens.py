"""Verify the JWT an EHR sends with each CDS Hooks call (CDS Hooks 2.0, "Trusting CDS Clients").

Trust is configuration: a JSON file `{"issuers": {"<iss>": {"keys": [<JWK>, ...]}}}` lists every
allowed issuer with its public keys (a JWKS). Keys are never fetched from a `jku` or the issuer's
site: the service makes no outbound calls, and a key the city did not vet is not a key it trusts.
Only asymmetric algorithms are accepted; `none` and HMAC are refused before any key is looked at,
because an HMAC "verified" with a public key would let anyone holding that key mint tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
LEEWAY_SECONDS = 30


class TokenRejected(Exception):
    """The bearer token is missing or not acceptable; the message says why without echoing it."""


class IssuersFileError(Exception):
    """The trusted-issuers file cannot be read."""


@dataclass(frozen=True)
class VerifiedToken:
    issuer: str
    subject: str | None
    claims: dict[str, Any]

    @property
    def replay_key(self) -> str:
        """What identifies this token among every token seen (sha256 of issuer and `jti`): the key of
        the replay cache, which so holds nothing of the token itself."""
        return hashlib.sha256(f"{self.issuer}\0{self.claims['jti']}".encode()).hexdigest()

    @property
    def forget_after(self) -> datetime:
        """When the replay cache may forget it: past its `exp` and the leeway, it is refused anyway."""
        return datetime.fromtimestamp(float(self.claims["exp"]) + LEEWAY_SECONDS, UTC)


def _jwks(issuer: str, document: Any, path: Path) -> dict[str | None, jwt.PyJWK]:
    keys: dict[str | None, jwt.PyJWK] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise IssuersFileError(f"{path}: issuer {issuer!r} needs a JWKS object with a 'keys' list")
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            raise IssuersFileError(f"{path}: issuer {issuer!r} lists a symmetric or malformed key")
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as error:
            raise IssuersFileError(f"{path}: issuer {issuer!r} has an unusable key ({error})") from None
        keys[entry.get("kid")] = key
    return keys


class EhrTokenVerifier:
    """Trusted issuers and their keys, read once; `verify` checks one bearer token."""

    def __init__(self, issuers: dict[str, dict[str | None, jwt.PyJWK]], audiences: tuple[str, ...]) -> None:
        self._issuers = issuers
        self.audiences = audiences

    @classmethod
    def from_file(cls, path: Path, audiences: tuple[str, ...]) -> EhrTokenVerifier:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise IssuersFileError(f"{path}: unreadable ({error})") from None
        issuers = document.get("issuers") if isinstance(document, dict) else None
        if not isinstance(issuers, dict) or not issuers:
            raise IssuersFileError(f'{path}: expected {{"issuers": {{"<iss>": <JWKS>}}}}')
        return cls({str(iss): _jwks(str(iss), jwks, path) for iss, jwks in issuers.items()}, audiences)

    def _key(self, issuer: str, kid: object) -> jwt.PyJWK:
        keys = self._issuers[issuer]
        if kid is not None:
            key = keys.get(str(kid))
            if key is None:
                raise TokenRejected("token 'kid' is not among the issuer's trusted keys")
            return key
        if len(keys) != 1:
            raise TokenRejected("token has no 'kid' and the issuer has several keys")
        return next(iter(keys.values()))

    def verify(self, token: str | None) -> VerifiedToken:
        """The verified claims; raises TokenRejected for anything short of a valid trusted token."""
        if not token:
            raise TokenRejected("missing bearer token (send Authorization: Bearer <JWT>)")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC:
            raise TokenRejected("token algorithm is not allowed (asymmetric signatures only)")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise TokenRejected("token issuer is not trusted")
        key = self._key(issuer, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[str(algorithm)],
                audience=list(self.audiences),
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("token audience is not this service") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("token is issued in the future") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRejected(f"token lacks the {error.claim!r} claim") from None
        except jwt.PyJWTError:
            raise TokenRejected("token signature or claims do not verify") from None
        subject = claims.get("sub")
        return VerifiedToken(issuer, None if subject is None else str(subject), claims)
