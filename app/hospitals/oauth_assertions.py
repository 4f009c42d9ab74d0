"""SMART Backend Services client authentication: the `client_assertion` JWT an EHR signs with its
private key (hl7.org/fhir/smart-app-launch, "Backend Services"; RFC 7523 as used there).

The JWT must be signed with RS384 or ES384 by a key of the client's registered JWKS, named by `kid`
(`typ` JWT); `iss` and `sub` are the client id, `aud` the token endpoint's URL, `exp` at most five
minutes ahead, and its `jti` is accepted once, in every worker and replica (the database's spent
token record, as for CDS Hooks tokens). A `jku` header is never fetched: the keys are the ones
registered with the client. Refusals say why in a fixed phrase, never with the token's content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from app.hospitals.oauth_clients import ASSERTION_ALGORITHMS, Client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME_SECONDS = 300  # SMART: exp no more than five minutes in the future
LEEWAY_SECONDS = 30
REQUIRED = ("iss", "sub", "aud", "exp", "jti")


class AssertionRefused(Exception):
    """The assertion does not authenticate its client. `client_id` is set only for a registered
    client (the security log names it); `reason` is a fixed phrase."""

    def __init__(self, reason: str, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_id = client_id


@dataclass(frozen=True)
class VerifiedAssertion:
    client: Client
    replay_key: str  # sha256 of client id and jti: what the spent-token record keeps
    forget_after: datetime


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return jwt.get_unverified_header(assertion), jwt.decode(
            assertion, options={"verify_signature": False}
        )
    except jwt.PyJWTError:
        raise AssertionRefused("client_assertion is not a well-formed JWT") from None


def claimed_client(assertion: str) -> str | None:
    """The client id the assertion claims to come from (unverified: only to look the client up)."""
    issuer = _unverified(assertion)[1].get("iss")
    return issuer if isinstance(issuer, str) else None


def verify_assertion(assertion: str, client: Client | None, token_url: str) -> VerifiedAssertion:
    """Verify the assertion as coming from `client` (the one its `iss` names, None when that is no
    registered client); its jti is not yet checked for reuse."""
    header, _ = _unverified(assertion)
    if client is None:
        raise AssertionRefused("client_assertion's iss is not a registered client")
    if not client.keys:
        raise AssertionRefused("the client has no registered JWKS", client.id)
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise AssertionRefused("client_assertion must be signed with RS384 or ES384", client.id)
    if header.get("typ") != "JWT":
        raise AssertionRefused("client_assertion's typ must be JWT", client.id)
    kid = header.get("kid")
    key = client.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise AssertionRefused("client_assertion's kid is not among the client's registered keys", client.id)
    try:
        verified: dict[str, Any] = jwt.decode(
            assertion,
            key=key,
            algorithms=[str(header["alg"])],
            audience=token_url,
            issuer=client.id,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED)},
        )
    except jwt.ExpiredSignatureError:
        raise AssertionRefused("client_assertion has expired", client.id) from None
    except jwt.InvalidAudienceError:
        raise AssertionRefused("client_assertion's aud is not this token endpoint", client.id) from None
    except jwt.ImmatureSignatureError:
        raise AssertionRefused("client_assertion is not valid yet", client.id) from None
    except jwt.MissingRequiredClaimError as error:
        raise AssertionRefused(f"client_assertion lacks the {error.claim!r} claim", client.id) from None
    except jwt.PyJWTError:
        raise AssertionRefused("client_assertion's signature or claims do not verify", client.id) from None
    if verified.get("sub") != client.id:
        raise AssertionRefused("client_assertion's sub must equal its iss (the client id)", client.id)
    expires = float(verified["exp"])
    if expires > datetime.now(UTC).timestamp() + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise AssertionRefused("client_assertion's exp is more than five minutes ahead", client.id)
    jti = verified["jti"]
    if not isinstance(jti, str) or not jti:
        raise AssertionRefused("client_assertion's jti must be a non-empty string", client.id)
    replay_key = hashlib.sha256(f"oauth-client\0{client.id}\0{jti}".encode()).hexdigest()
    return VerifiedAssertion(client, replay_key, datetime.fromtimestamp(expires + LEEWAY_SECONDS, UTC))
