"""`GET` and `POST /oauth/token`: OAuth 2.0 client credentials (RFC 6749 §4.4) for the Lead Safe
drop-in, and SMART Backend Services' `private_key_jwt` client authentication on the same endpoint.

A client authenticates with HTTP Basic (client id and secret, RFC 6749 §2.3.1), with
`client_id`/`client_secret` in the body, or with a signed `client_assertion` (SMART; see
app/hospitals/oauth_assertions.py): exactly one of them. `grant_type` may come in the form body or,
as Lead Safe clients send it, in the query; secrets and assertions only in the body. Errors are RFC
6749 §5.2 JSON (`error`, `error_description`); every answer has `Cache-Control: no-store`.

Scopes: a client holds `lead`. A request may name it, or SMART system scopes on the lead risk's
resource (`system/RiskAssessment.<permissions>`, `system/*.<permissions>`), which map to `lead`;
other scopes are not granted, and a request granted none is refused (`invalid_scope`). The answer's
`scope` lists the requested scopes granted (the client's own, when it named none).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.hospitals.oauth_assertions import (
    ASSERTION_TYPE,
    AssertionRefused,
    claimed_client,
    verify_assertion,
)
from app.hospitals.oauth_clients import (
    ASSERTION_ALGORITHMS,
    CLIENT_SCOPES,
    TOKEN_SECONDS,
    Client,
    OAuthClients,
    digest,
)
from app.platform.bodies import BodyTooLarge, read_limited_body
from app.platform.errors import ServiceError
from app.platform.handlers import JSONBytes
from app.platform.partner_context import CURRENT_PARTNER
from app.platform.settings import Settings
from app.platform.sizes import OAUTH_MAX_BODY_BYTES

log = logging.getLogger(__name__)
security_log = logging.getLogger("civicrisk.security")

TOKEN_PATH = "/oauth/token"
GRANT = "client_credentials"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CHALLENGE = 'Basic realm="civicrisk", charset="UTF-8"'
FORM = "application/x-www-form-urlencoded"
BODY_ONLY = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
SMART_RESOURCES = frozenset({"RiskAssessment", "*"})  # system/<resource>.<permissions> granting `lead`


class OAuthRefused(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _invalid_request(description: str) -> OAuthRefused:
    return OAuthRefused(400, "invalid_request", description)


def _invalid_client(description: str, client_id: str | None = None) -> OAuthRefused:
    # Client and reason only: never a secret, an assertion, or an id no client holds.
    security_log.warning(
        "client authentication refused",
        extra={"event": "security", "client": client_id, "reason": description},
    )
    return OAuthRefused(401, "invalid_client", description)


def oauth_error(status: int, error: str, description: str, retry_after: int | None = None) -> JSONBytes:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONBytes({"error": error, "error_description": description}, status, headers)


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise _invalid_request(f"the {where} is not form-encoded UTF-8") from None


async def _parameters(request: Request) -> dict[str, str]:
    """The request's parameters from the query and the form body; each at most once, and empty ones
    dropped (RFC 6749 §3.1: a parameter without a value is as if omitted)."""
    pairs = _pairs(request.url.query, "query")
    for name, _ in pairs:
        if name in BODY_ONLY:
            raise _invalid_request(f"{name} must be sent in the request body, never in the URL")
    try:
        body = await read_limited_body(request, OAUTH_MAX_BODY_BYTES)
    except BodyTooLarge:
        raise OAuthRefused(413, "invalid_request", f"body over {OAUTH_MAX_BODY_BYTES} bytes") from None
    if body:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FORM:
            raise _invalid_request(f"send the parameters as {FORM}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid_request("the body is not form-encoded UTF-8") from None
        pairs += _pairs(text, "body")
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name in parameters:
            raise _invalid_request(f"{_name(name)} is sent more than once")
        if value:
            parameters[name] = value
    return parameters


def _name(name: str) -> str:
    return name if name.isidentifier() and len(name) <= 40 else "a parameter"


def _basic(request: Request) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic (each form-decoded, RFC 6749 §2.3.1), or None."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client("malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _token_url(settings: Settings) -> str | None:
    base = settings.public_url or settings.cds_service_url
    return None if base is None else f"{base}{TOKEN_PATH}"


async def _authenticate(request: Request, parameters: dict[str, str]) -> Client:
    clients: OAuthClients = request.app.state.oauth_clients
    basic = _basic(request)
    assertion = parameters.get("client_assertion")
    body_secret = parameters.get("client_secret")
    used = [method for method in (basic, assertion, body_secret) if method is not None]
    if len(used) > 1:
        raise _invalid_request("use one client authentication method (RFC 6749 §2.3)")
    if assertion is not None:
        return await _by_assertion(request, clients, parameters, assertion)
    if basic is not None:
        client_id, secret = basic
    elif body_secret is not None:
        client_id, secret = parameters.get("client_id", ""), body_secret
    else:
        raise _invalid_client("client authentication required: HTTP Basic with the client id and secret")
    if "client_id" in parameters and parameters["client_id"] != client_id:
        raise _invalid_request("client_id does not match the authenticated client")
    client = await clients.client_now(client_id) if client_id else None
    stored = None if client is None else client.secret_sha256
    if client is None or stored is None or not hmac.compare_digest(digest(secret), stored):
        raise _invalid_client("unknown client or wrong secret", None if client is None else client.id)
    return client


async def _by_assertion(
    request: Request, clients: OAuthClients, parameters: dict[str, str], assertion: str
) -> Client:
    if parameters.get("client_assertion_type") != ASSERTION_TYPE:
        raise _invalid_request(f"client_assertion_type must be {ASSERTION_TYPE}")
    settings: Settings = request.app.state.settings
    token_url = _token_url(settings)
    try:
        claimed = claimed_client(assertion)
        client = await clients.client_now(claimed) if claimed else None
        if token_url is None:
            raise AssertionRefused("this service's public URL is not configured (CIVICRISK_PUBLIC_URL)")
        verified = verify_assertion(assertion, client, token_url)
        if "client_id" in parameters and parameters["client_id"] != verified.client.id:
            raise AssertionRefused("client_id does not match the assertion's iss", verified.client.id)
        repository = clients.repository
        first = await anyio.to_thread.run_sync(
            lambda: repository().first_use(verified.replay_key, verified.forget_after)
        )
        if not first:
            raise AssertionRefused("client_assertion's jti has been used before", verified.client.id)
    except AssertionRefused as refused:
        raise _invalid_client(refused.reason, refused.client_id) from None
    return verified.client


def _scope(requested: str | None, client: Client) -> tuple[frozenset[str], str]:
    """The scopes granted (civicrisk's) and the answer's `scope` (the requested ones granted)."""
    if requested is None:
        return frozenset(client.scopes), " ".join(sorted(client.scopes))
    granted, named = set(), []
    for scope in requested.split():
        meant = _meaning(scope)
        if meant is not None and meant in client.scopes:
            granted.add(meant)
            named.append(scope)
    if not granted:
        raise OAuthRefused(400, "invalid_scope", f"none of the requested scopes is granted ({_SCOPES_HELP})")
    return frozenset(granted), " ".join(named)


_SCOPES_HELP = "ask for lead, or system/RiskAssessment.rs or system/*.rs"


def _meaning(scope: str) -> str | None:
    if scope in CLIENT_SCOPES:
        return scope
    context, _, rest = scope.partition("/")
    resource, dot, permissions = rest.partition(".")
    if context == "system" and dot and permissions and resource in SMART_RESOURCES:
        return "lead"
    return None


async def _token(request: Request) -> dict[str, Any]:
    parameters = await _parameters(request)
    grant = parameters.get("grant_type")
    if grant is None:
        raise _invalid_request("grant_type is required (grant_type=client_credentials)")
    if grant != GRANT:
        raise OAuthRefused(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    client = await _authenticate(request, parameters)
    CURRENT_PARTNER.set(client.partner)
    scopes, named = _scope(parameters.get("scope"), client)
    clients: OAuthClients = request.app.state.oauth_clients
    token = await clients.issue(client, scopes)
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS, "scope": named}


router = APIRouter(tags=["hospitals"])

_PARAMETERS = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": [GRANT]},
        "scope": {"type": "string"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
        "client_assertion": {"type": "string"},
    },
}
_OAUTH_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
            },
            "example": {"error": "invalid_client", "error_description": "unknown client or wrong secret"},
        }
    }
}
_TOKEN = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "enum": ["bearer"]},
                    "expires_in": {"type": "integer"},
                    "scope": {"type": "string"},
                },
            },
            "example": {
                "access_token": "ct_...",
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": "lead",
            },
        }
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "An access token, valid for an hour", **_TOKEN},
    400: {"description": "invalid_request, unsupported_grant_type or invalid_scope (RFC 6749 §5.2)",
          **_OAUTH_ERROR},
    401: {"description": "invalid_client: unknown client, wrong secret, or a refused assertion",
          **_OAUTH_ERROR},
    413: {"description": "Body too large", **_OAUTH_ERROR},
    503: {"description": "The client store (the service's database) is unreachable", **_OAUTH_ERROR},
}  # fmt: skip
_SECURITY: list[dict[str, list[str]]] = [
    {"OAuthClient": []},
    {},
]  # HTTP Basic, or a client assertion (or secret) in the body
_QUERY = [
    {"name": "grant_type", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "scope", "in": "query", "required": False, "schema": {"type": "string"}},
]


async def token(request: Request) -> Response:
    """An access token for the Lead Safe routes (client credentials; SMART Backend Services)."""
    try:
        return JSONBytes(await _token(request), headers=NO_STORE)
    except OAuthRefused as refused:
        return oauth_error(refused.status, refused.error, refused.description)
    except ServiceError as error:  # 503: the database (clients, tokens, spent assertions) unreachable
        return oauth_error(error.status, "temporarily_unavailable", error.message, error.retry_after)
    except Exception as error:
        log.error("token request failed", extra={"error": type(error).__name__})  # the type only
        return oauth_error(500, "server_error", "internal error")


# Lead Safe's documented call is a GET with a form body (`GET --user ID:SECRET --data
# "grant_type=client_credentials"`); OAuth's is a POST with one. One route serves both (so a 405
# lists both in `Allow`); OpenAPI needs one operation id per method, so two routes that never match
# (the first always does) document the two operations.
router.add_api_route(TOKEN_PATH, token, methods=["GET", "POST"], include_in_schema=False)
for method in ("GET", "POST"):
    router.add_api_route(
        TOKEN_PATH,
        token,
        methods=[method],
        responses=_RESPONSES,
        summary="OAuth 2.0 token" + (" (Lead Safe's GET form)" if method == "GET" else ""),
        openapi_extra={
            "security": _SECURITY,
            "parameters": _QUERY,
            "requestBody": {"required": False, "content": {FORM: {"schema": _PARAMETERS}}},
        },
    )


SMART_SCOPES = ["lead", "system/RiskAssessment.rs", "system/*.rs"]


class NotConfigured(ServiceError):
    status = 404
    code = "not_configured"


@router.get(
    "/.well-known/smart-configuration",
    summary="SMART configuration (Backend Services: the token endpoint and how to authenticate)",
    responses={404: {"description": "No public URL is configured (CIVICRISK_PUBLIC_URL)"}},
)
async def smart_configuration(request: Request) -> Response:
    """Where a SMART backend client gets its token, and what it may use: the token endpoint, client
    credentials, private_key_jwt with RS384 or ES384 (or a client secret), the scopes granted."""
    token_url = _token_url(request.app.state.settings)
    if token_url is None:
        raise NotConfigured("no public URL is configured (CIVICRISK_PUBLIC_URL)")
    return JSONBytes(
        {
            "token_endpoint": token_url,
            "grant_types_supported": [GRANT],
            "token_endpoint_auth_methods_supported": [
                "private_key_jwt",
                "client_secret_basic",
                "client_secret_post",
            ],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": SMART_SCOPES,
            "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric"],
        }
    )
