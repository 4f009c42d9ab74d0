"""Verify the JWT an EHR sends with each CDS Hooks call (CDS Hooks 2.0, "Trusting CDS Clients").

The header must name an asymmetric `alg`, a `kid` and `typ: JWT`; `none` and HMAC are refused before
any key is looked at, because an HMAC "verified" with a public key would let anyone holding that key
mint tokens. The issuer must be on the trusted list (app/hospitals/ehr_keys.py) and the key the `kid`
names one of its keys. The claims: `aud` is the URL of the endpoint invoked (the configured public
base URL and the path, never the base URL alone), `iss`, `exp`, `iat` and `jti` present, `exp` and
`iat` within the clock skew, and a lifetime (`exp` - `iat`) no longer than the configured maximum.
Single use of each `jti` is app/hospitals/replay.py's.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.hospitals.ehr_keys import Issuer, IssuersFile, Jwk, JwksCache

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class TokenRejected(Exception):
    """The bearer token is missing or not acceptable; the message says why without echoing it.
    `reason` is a short fixed name for the security log and metrics; `client` the token's verified
    issuer, when the signature was checked."""

    def __init__(self, message: str, reason: str = "invalid", client: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.client = client


@dataclass(frozen=True)
class VerifiedToken:
    issuer: str
    subject: str | None
    claims: dict[str, Any]
    skew_seconds: int

    @property
    def replay_key(self) -> str:
        """What identifies this token among every token seen (sha256 of issuer and `jti`): the key of
        the replay cache, which so holds nothing of the token itself."""
        return hashlib.sha256(f"{self.issuer}\0{self.claims['jti']}".encode()).hexdigest()

    @property
    def forget_after(self) -> datetime:
        """When the replay cache may forget it: past its `exp` and the skew, it is refused anyway."""
        return datetime.fromtimestamp(float(self.claims["exp"]) + self.skew_seconds, UTC)


class EhrTokenVerifier:
    """`verify` checks one bearer token against the trusted issuers for the URL it was sent to."""

    def __init__(self, issuers: IssuersFile, max_lifetime_seconds: int, skew_seconds: int) -> None:
        self.issuers = issuers
        self.jwks = JwksCache()
        self.max_lifetime = max_lifetime_seconds
        self.skew = skew_seconds

    async def _key(self, issuer: Issuer, kid: str, jku: object) -> Jwk | None:
        key = issuer.keys.get(kid)
        if key is not None or not issuer.jwks_urls:
            return key
        # A `jku` is honoured only when it is on the issuer's list; otherwise the issuer's own URL.
        url = jku if isinstance(jku, str) and jku in issuer.jwks_urls else issuer.jwks_urls[0]
        return await self.jwks.key(url, kid)

    async def verify(self, token: str | None, audience: str) -> VerifiedToken:
        """The verified claims; raises TokenRejected for anything short of a valid trusted token."""
        if not token:
            raise TokenRejected("missing bearer token (send Authorization: Bearer <JWT>)", "missing")
        header, claims, signing_input, signature = _parts(token)
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC:
            raise TokenRejected("token algorithm is not allowed (asymmetric signatures only)", "algorithm")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise TokenRejected("token header needs typ 'JWT'", "header")
        if "crit" in header or "b64" in header:  # extensions this service does not implement
            raise TokenRejected(
                "token header has critical extensions this service does not support", "header"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("token header needs the 'kid' of the signing key", "header")
        iss = claims.get("iss")
        issuer = self.issuers.current().get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise TokenRejected("token issuer is not trusted", "issuer")
        jwk = await self._key(issuer, kid, header.get("jku"))
        if jwk is None:
            raise TokenRejected("token 'kid' is not among the issuer's trusted keys", "key")
        key = jwk.for_algorithm(str(algorithm))
        if key is None:
            raise TokenRejected("token algorithm does not match the issuer's key", "algorithm")
        if not key.Algorithm.verify(signing_input, key.key, signature):
            raise TokenRejected("token signature does not verify", "signature")
        self._check_claims(claims, audience, issuer.iss)
        subject = claims.get("sub")
        return VerifiedToken(issuer.iss, None if subject is None else str(subject), claims, self.skew)

    def _check_claims(self, claims: dict[str, Any], audience: str, iss: str) -> None:
        """RFC 7519's checks of a signed token's claims, with the skew, and CDS Hooks' own."""
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise TokenRejected(f"token lacks the {name!r} claim", "claims", iss)
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf") if name in claims}
        if not all(
            isinstance(value, int | float) and not isinstance(value, bool) for value in times.values()
        ):
            raise TokenRejected("token 'exp', 'iat' and 'nbf' must be numbers", "claims", iss)
        now = time.time()
        if now >= claims["exp"] + self.skew:
            raise TokenRejected("token has expired", "expired", iss)
        if claims["iat"] > now + self.skew or claims.get("nbf", 0) > now + self.skew:
            raise TokenRejected("token is issued in the future", "future", iss)
        aud = claims["aud"]
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise TokenRejected(
                f"token audience is not this endpoint (aud must be {audience})", "wrong_audience", iss
            )
        if claims["exp"] - claims["iat"] > self.max_lifetime:
            raise TokenRejected(f"token lifetime (exp - iat) is over {self.max_lifetime} s", "lifetime", iss)
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise TokenRejected("token 'jti' must be a non-empty string", "claims", iss)


def _segment(part: bytes) -> bytes:
    """One base64url segment of a compact JWS, in its one canonical form: the decoder skips any byte
    outside the alphabet, so a segment whose re-encoding differs (stray bytes, padding, stray bits)
    is refused."""
    if len(part) % 4 == 1:
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != part:
        raise ValueError("not canonical base64url")
    return decoded


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """A compact JWS read once: (header, claims, signing input, signature). Parsed here rather than
    by PyJWT, whose decoders read a token three times over, each character in Python, for a third of
    a call's time; PyJWT's algorithm objects still check the signature."""
    try:
        raw = token.encode("ascii")
        header_part, payload_part, signature_part = raw.split(b".")
        header, claims = orjson.loads(_segment(header_part)), orjson.loads(_segment(payload_part))
        signature = _segment(signature_part)
    except (UnicodeEncodeError, ValueError, orjson.JSONDecodeError):
        raise TokenRejected("bearer token is not a well-formed JWT", "malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRejected("bearer token is not a well-formed JWT", "malformed")
    return header, claims, header_part + b"." + payload_part, signature
