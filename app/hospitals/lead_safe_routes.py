"""The Lead Safe contract's own paths, so an existing Lead Safe client switches to civicrisk by its
base URL: `POST /upload/insert/` (the same engine and answers as `POST /v1/lead/risk`, within the
contract's 20,000-character limit), `GET /get/` and `GET /get/{id}`.

The caller presents an access token from `/oauth/token` (app/hospitals/oauth_routes.py) as
`Authorization: Bearer`, or a partner key with the `lead` scope as on `/v1/lead/risk`; it is checked
before a byte of the body is read. civicrisk keeps no submission, by design: `GET /get/` lists none
and `GET /get/{id}` answers 404 saying so, and no answer carries a `Content-Location`. Every error is
in the contract's shape, `{"errors": [{"message", "code"}]}`. The root paths serve the deployment's
configured lead model (CIVICRISK_LEAD_MODEL, else the first lead bundle), as Chicago's did.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.hospitals.lead_routes import Refused, contract_errors, lead_route, score_submission
from app.hospitals.oauth_clients import TOKEN_PREFIX, OAuthClients
from app.platform.bodies import BodyTooLarge, read_limited_body
from app.platform.deps import LEAD, SECURITY, check_partner
from app.platform.errors import ServiceError, Unauthorized
from app.platform.handlers import JSONBytes
from app.platform.partner_context import CURRENT_PARTNER
from app.platform.sizes import LEAD_SAFE_MAX_CHARACTERS

log = logging.getLogger(__name__)

NOT_RETAINED = (
    "Results are not retained: civicrisk keeps no submission, so none can be retrieved; "
    "submit the record again to /upload/insert/ for a prediction"
)
INVALID_TOKEN = "missing, invalid or expired access token (get one from /oauth/token)"
TOO_LONG = f"Submission over the {LEAD_SAFE_MAX_CHARACTERS:,}-character limit"


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


async def authenticate(request: Request) -> None:
    """An access token from /oauth/token with the `lead` scope, or a partner key with it."""
    token = _bearer(request)
    if token is not None and token.startswith(TOKEN_PREFIX):
        clients: OAuthClients = request.app.state.oauth_clients
        holder = await clients.holder(token)
        if holder is None:
            raise Refused(401, INVALID_TOKEN)
        if LEAD not in holder.scopes:
            raise Refused(403, "this access token does not have the 'lead' scope")
        CURRENT_PARTNER.set(holder.client.partner)
        return
    try:
        check_partner(request, LEAD)
    except Unauthorized:
        raise Refused(401, INVALID_TOKEN) from None


async def _read_submission(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Refused(415, "Content-Type must be application/json")
    try:
        raw = await read_limited_body(request, 4 * LEAD_SAFE_MAX_CHARACTERS)
    except BodyTooLarge:
        raise Refused(413, TOO_LONG) from None
    # Characters, as the contract counts: only a body longer in bytes than the limit can be over it.
    if len(raw) > LEAD_SAFE_MAX_CHARACTERS and len(raw.decode("utf-8", "replace")) > LEAD_SAFE_MAX_CHARACTERS:
        raise Refused(413, TOO_LONG)
    return raw


async def _contract(request: Request, answer: Any) -> Response:
    """Run `answer` and turn every refusal into the contract's error shape."""
    try:
        return JSONBytes(await answer(request))
    except Refused as refused:
        return contract_errors(refused.status, *refused.messages)
    except ServiceError as error:  # 403, 503 from the key check, the client store or the model lookup
        return contract_errors(error.status, error.message, retry_after=error.retry_after)
    except Exception as error:
        log.error("lead safe route failed", extra={"error": type(error).__name__})  # the type only
        return contract_errors(500, "internal error")


async def _insert(request: Request) -> dict[str, Any]:
    await authenticate(request)
    return await score_submission(request, await _read_submission(request))


async def insert(request: Request) -> Response:
    """Lead exposure risk of one child at a visit (Lead Safe contract); nothing is kept."""
    return await _contract(request, _insert)


async def _no_items(request: Request) -> dict[str, Any]:
    await authenticate(request)
    return {"items": []}


async def _not_retained(request: Request) -> dict[str, Any]:
    await authenticate(request)
    raise Refused(404, NOT_RETAINED)


_ERROR = {"content": {"application/json": {"example": {"errors": [{"message": INVALID_TOKEN, "code": 401}]}}}}
_ERRORS = {status: answer for status, answer in (lead_route.responses or {}).items() if status != 200}
_SECURITY = SECURITY  # the partner key schemes; an OAuth access token is sent as Bearer
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or expired access token", **_ERROR},
    403: {"description": "The token (or key) lacks the `lead` scope", **_ERROR},
    503: {"description": "The client store (the service's database) is unreachable", **_ERROR},
}

# Like /v1/lead/risk, served through the fast lane (app/platform/fast_lane.py) and declared on the app.
insert_route = APIRoute(
    "/upload/insert/",
    insert,
    methods=["POST"],
    tags=["hospitals"],
    summary="Lead Safe: submit a patient record",
    responses={
        200: (lead_route.responses or {})[200],
        **_ERRORS,
        401: _AUTH_ERRORS[401],
        413: {"description": f"Over the contract's {LEAD_SAFE_MAX_CHARACTERS:,}-character limit", **_ERROR},
    },
    openapi_extra={
        "security": _SECURITY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "title": "Lead Safe request"}}},
        },
    },
)

router = APIRouter(tags=["hospitals"])


@router.get(
    "/get/",
    summary="Lead Safe: submissions (always none: civicrisk keeps none)",
    responses={
        200: {"content": {"application/json": {"example": {"items": []}}}},
        **_AUTH_ERRORS,
    },
    openapi_extra={"security": _SECURITY},
)
async def submissions(request: Request) -> Response:
    """Lead Safe's status of all submissions: civicrisk keeps none, so the list is empty."""
    return await _contract(request, _no_items)


@router.get(
    "/get/{submission_id}",
    summary="Lead Safe: a past prediction (never retained)",
    responses={
        404: {"description": "Results are not retained", **_ERROR},
        **_AUTH_ERRORS,
    },
    openapi_extra={"security": _SECURITY},
)
async def submission(submission_id: str, request: Request) -> Response:
    """Lead Safe's retrieval of a past prediction: 404, as civicrisk retains no result."""
    return await _contract(request, _not_retained)
