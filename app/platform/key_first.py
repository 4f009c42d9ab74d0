"""Routes whose JSON body FastAPI validates (so the OpenAPI document describes it) but only after the
caller's key and the Content-Type were checked on the headers, and only within the route's byte limit.

FastAPI reads and parses a declared body before it runs any dependency, the key check included: a
caller without a key could make the service read a body of any size (issue #19 measured 300 MB read
in full before the 401). A route built by `key_first_route` checks first, then reads the body
itself, refusing it past the limit as it streams in (a chunked body too), then hands FastAPI the
bytes it read.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from app.platform.bodies import BodyTooLarge, check_media_type, parse_json, read_limited_body
from app.platform.errors import PayloadTooLarge

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def key_first_route(check: Callable[[Request], object], limit: int) -> type[APIRoute]:
    """An APIRoute class that runs `check` (it raises to refuse: 401, 403, 503) and the JSON media
    type check (415) on the headers, then reads at most `limit` bytes of body (413 past it) and
    checks it is JSON (400)."""

    class KeyFirstRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def checked_first(request: Request) -> Response:
                check(request)
                check_media_type(request)
                try:
                    body = await read_limited_body(request, limit)
                except BodyTooLarge as error:
                    raise PayloadTooLarge(str(error)) from None
                parse_json(body)  # 400 for a body that is not JSON, as on the other routes
                return await handler(Request(request.scope, _replay(body, request.receive)))

            return checked_first

    return KeyFirstRoute


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then the connection's own messages (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
