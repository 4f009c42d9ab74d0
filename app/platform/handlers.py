"""Map every error (domain, validation, routing, unexpected) to the one JSON error shape."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.platform.errors import Problem, ServiceError, Unauthorized

log = logging.getLogger(__name__)

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class JSONBytes(JSONResponse):
    """JSON rendered by orjson: fast, and NaN/inf become null instead of invalid JSON. A JSONResponse,
    so FastAPI documents each route's response model (it documents any other class as a string)."""

    def render(self, content: Any) -> bytes:
        return (
            content
            if isinstance(content, bytes)
            else orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
        )


def error_response(
    status: int,
    code: str,
    message: str,
    problems: tuple[Problem, ...] = (),
    headers: dict[str, str] | None = None,
) -> JSONBytes:
    details = [{"loc": list(p.loc), "message": p.message} for p in problems]
    return JSONBytes({"error": {"code": code, "message": message, "details": details}}, status, headers)


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    headers = {"WWW-Authenticate": error.challenge} if isinstance(error, Unauthorized) else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return error_response(error.status, error.code, error.message, error.problems, headers or None)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    # FastAPI's default answer echoes the input; ours names the field and the problem only.
    problems = tuple(
        Problem(
            tuple(part for part in item.get("loc", ()) if isinstance(part, str | int)), str(item.get("msg"))
        )
        for item in error.errors()
    )
    return error_response(422, "invalid_request", "the request does not match the API schema", problems)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    return error_response(error.status_code, code, str(error.detail), headers=dict(error.headers or {}))


async def _unexpected(request: Request, error: Exception) -> Response:
    # The traceback goes to the log (never to the client); the request body is never logged.
    log.error("unhandled error", exc_info=error, extra={"path": request.url.path})
    return error_response(500, "internal_error", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
