"""CDS Hooks refusals as a FHIR R4 OperationOutcome (the body the CDS Hooks specification asks a
service to send with a non-2xx status): every issue says what is wrong and where, never a value."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.platform.errors import ServiceError, Unauthorized
from app.platform.handlers import JSONBytes

# FHIR IssueType by HTTP status.
ISSUE_TYPES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    503: "transient",
}


def _expression(loc: tuple[str | int, ...]) -> str:
    """`("body", "feedback", 0, "card")` as the FHIRPath-like `feedback[0].card`."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "body"


def operation_outcome(error: ServiceError) -> dict[str, Any]:
    code = ISSUE_TYPES.get(error.status, "processing")
    issues: list[dict[str, Any]] = [
        {"severity": "error", "code": code, "details": {"text": error.message}, "diagnostics": error.code}
    ]
    for problem in error.problems:
        issues.append(
            {
                "severity": "error",
                "code": code,
                "details": {"text": problem.message},
                "expression": [_expression(problem.loc)],
            }  # fmt: skip
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(error: ServiceError) -> JSONBytes:
    headers = {"WWW-Authenticate": error.challenge} if isinstance(error, Unauthorized) else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONBytes(operation_outcome(error), error.status, headers or None)


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def refusals_as_outcomes(endpoint: Endpoint) -> Endpoint:
    """The endpoint, answering what it refuses as an OperationOutcome (also on the fast lane, which
    calls an endpoint without its route's handler)."""

    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ServiceError as error:
            return outcome_response(error)

    return answer


class CdsRoute(APIRoute):
    """A CDS Hooks route: what it refuses is answered as an OperationOutcome."""

    def get_route_handler(self) -> Endpoint:
        return refusals_as_outcomes(super().get_route_handler())


OUTCOME_SCHEMA = {
    "type": "object",
    "title": "OperationOutcome",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}


def outcome_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response documented as an OperationOutcome."""
    return {"description": description, "content": {"application/json": {"schema": OUTCOME_SCHEMA}}}
