"""Hospital lead risk in the Chicago "Lead Safe API" contract: `POST /v1/lead/risk`.

Errors on this route use the contract's shape, `{"errors": [{"message", "code"}]}` with the HTTP
status as `code`, not the service's usual one. Nothing of the request is kept or logged: the access
log gets the route, status, latency and partner id; a failure is logged by its exception type only.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.hospitals import lead_safe_typed
from app.hospitals.errors import OutsideArea
from app.hospitals.lead_answers import risk_score_notes
from app.hospitals.lead_risk import Home, LeadEngine, LeadService
from app.hospitals.lead_safe import FieldError, LeadSafeRequest, parse_request
from app.platform.bodies import BodyTooLarge, read_limited_body
from app.platform.clock import MillisecondClock
from app.platform.deps import LEAD, SECURITY, check_partner
from app.platform.errors import ServiceError
from app.platform.handlers import JSONBytes
from app.platform.registry import LoadedModel
from app.platform.sizes import LEAD_SAFE_MAX_BODY_BYTES
from training.serving import today_in

log = logging.getLogger(__name__)

TOO_OLD = "Child over 1 years-old"
STATES = frozenset({"IL", "ILLINOIS"})
CLOCK = MillisecondClock(sep=" ")  # the contract's "2018-03-23 09:59:14.237+00:00"


def contract_errors(status: int, *messages: str, retry_after: int | None = None) -> JSONBytes:
    """An error in the contract's shape: `{"errors": [{"message", "code"}]}`, the status as code."""
    headers = {"WWW-Authenticate": 'Bearer realm="civicrisk"'} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"errors": [{"message": m, "code": status} for m in messages]}
    return JSONBytes(body, status, headers or None)


class Refused(Exception):
    """Refused in the contract's shape (status and messages)."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(messages[0] if messages else "")
        self.status = status
        self.messages = messages


async def _read_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Refused(415, "Content-Type must be application/json")
    try:
        return await read_limited_body(request, LEAD_SAFE_MAX_BODY_BYTES)
    except BodyTooLarge:
        raise Refused(413, f"body over {LEAD_SAFE_MAX_BODY_BYTES} bytes") from None


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused(400, "Invalid JSON: the body is not a complete JSON object") from None


async def ready_engine(service: LeadService, model: LoadedModel) -> LeadEngine:
    """The built engine at once, or built in a worker thread (first request after start-up)."""
    engine = service.ready_engine(model)
    if engine is None:
        engine = await anyio.to_thread.run_sync(service.engine, model)
    return engine


def _outside(service_area: str) -> Refused:
    return Refused(412, f"Address outside of {service_area}")


async def lead_risk(request: Request) -> Response:
    """Lead exposure risk of one child at a visit (Chicago Lead Safe API contract); nothing is kept."""
    try:
        return JSONBytes(await _answer(request))
    except Refused as refused:
        return contract_errors(refused.status, *refused.messages)
    except ServiceError as error:  # 401, 403, 503 from the key check or the model lookup
        return contract_errors(error.status, error.message, retry_after=error.retry_after)
    except Exception as error:
        # Only the type: a message or traceback could quote the request's values.
        log.error("lead risk failed", extra={"error": type(error).__name__})
        return contract_errors(500, "internal error")


async def _answer(request: Request) -> dict[str, Any]:
    check_partner(request, LEAD)
    return await score_submission(request, await _read_body(request))


async def score_submission(request: Request, raw: bytes) -> dict[str, Any]:
    """The contract's answer to a submission's raw body (the caller checked who sent it and read
    the body within its limit)."""
    # The usual request decodes against the contract's types (lead_safe_typed); any other is read as
    # JSON here, so a body that is not JSON is refused before the model is looked up, as ever.
    typed = lead_safe_typed.decode(raw)
    body = _json(raw) if typed is None else None
    service: LeadService = request.app.state.lead
    model = service.model()
    engine = await ready_engine(service, model)
    today = today_in(engine.config.timezone)  # the city's date, as a child's age is counted there
    parsed = None if typed is None else lead_safe_typed.check(typed, engine.threshold, today)
    if parsed is None:  # a problem, or a form the typed path leaves to the full check
        checked = parse_request(body if typed is None else _json(raw), engine.threshold, today)
        if isinstance(checked, list):
            raise Refused(400, *(problem.message for problem in checked if isinstance(problem, FieldError)))
        parsed = checked
    if not parsed.expected and (parsed.as_of - parsed.birth).days >= engine.horizon_days:
        # The contract's wording; eligibility itself is the model's: under label.horizon_days.
        raise Refused(412, TOO_OLD)
    _check_city(parsed, engine.config.display_name)
    try:
        result = service.score(engine, model, parsed.birth, max(parsed.as_of, parsed.birth), _home(parsed))
    except OutsideArea:
        raise _outside(engine.config.display_name) from None
    return {
        "version": model.version,
        "timestamp": CLOCK.now(),
        **parsed.echo,
        "risk_score": f"{result.score:.3f}",
        "risk_score_notes": risk_score_notes(result, parsed.elevated_lab, parsed.expected),
    }


def _check_city(parsed: LeadSafeRequest, service_area: str) -> None:
    """An address line is resolved against the city's own streets, so a suburb's "100 Main St" must
    be refused by its city and state first, not placed on a Chicago street of the same name."""
    if parsed.latitude is not None:
        return
    city = (parsed.city or "").strip().upper()
    state = (parsed.state or "").strip().upper()
    if city != service_area.upper() or state not in STATES:
        raise _outside(service_area)


def _home(parsed: LeadSafeRequest) -> Home:
    if parsed.latitude is not None and parsed.longitude is not None:
        return Home(latitude=parsed.latitude, longitude=parsed.longitude)
    return Home(address=parsed.address)


_CONTRACT_ERROR = {
    "content": {
        "application/json": {
            "example": {"errors": [{"message": "date_of_birth: missing required field", "code": 400}]}
        }
    }
}
# Not in a router: like the score route, app.main serves it through the fast lane (app/platform/fast_lane.py)
# and declares it on the app itself for OpenAPI.
lead_route = APIRoute(
    "/v1/lead/risk",
    lead_risk,
    methods=["POST"],
    tags=["hospitals"],
    responses={
        200: {
            "description": "Risk score and notes",
            "content": {
                "application/json": {
                    "example": {
                        "version": "2016-12-17-9861a1cb",
                        "timestamp": "2026-11-23 17:20:29.000+00:00",
                        "network_id": "Alliance Health",
                        "clinic_id": "EF",
                        "location_id": "examp_loc",
                        "patient_id": "9000",
                        "risk_score": "0.309",
                        "risk_score_notes": "High risk: order a blood lead test at this visit ...",
                    }
                }
            },
        },
        400: {"description": "A field is missing or invalid (each named)", **_CONTRACT_ERROR},
        401: {"description": "Missing or invalid API key", **_CONTRACT_ERROR},
        403: {"description": "The key lacks the `lead` scope", **_CONTRACT_ERROR},
        412: {"description": "Child over 1 years-old, or address outside of Chicago", **_CONTRACT_ERROR},
        413: {"description": "Body over the contract's size limit", **_CONTRACT_ERROR},
        415: {"description": "Content-Type is not application/json", **_CONTRACT_ERROR},
        503: {"description": "No lead model loaded, or no partner key configured", **_CONTRACT_ERROR},
    },
    openapi_extra={
        "security": SECURITY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "title": "Lead Safe request"}}},
        },
    },
)
