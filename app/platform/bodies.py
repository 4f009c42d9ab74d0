"""Reading a request body safely: within a size limit before it is all received, of an accepted media
type, parsed as JSON off the event loop when it is large. Every route that reads a body uses these."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import ClientDisconnect, Request

from app.platform.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from app.platform.settings import Settings
from app.platform.sizes import INLINE_PARSE_BYTES


class BodyTooLarge(Exception):
    """A body past the route's limit (each route answers it in its own error shape)."""


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes, else BodyTooLarge: refused by its Content-Length before a
    byte is read, or as soon as the bytes received pass the limit (a body sent without one).

    Read from `receive` itself: Starlette's `request.stream()` is an async generator whose machinery
    cost more than reading the one message a small body comes in (bench/README.md). Nothing reads
    the body after this on the routes that use it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_media_type(request: Request, also: tuple[str, ...] = ()) -> str:
    """The request's Content-Type without parameters, lower case: 415 unless JSON (or one of the
    media types `also` names)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json") and media_type not in also:
        wanted = " or ".join(("application/json", *also))
        raise UnsupportedMediaType(f"send Content-Type: {wanted} (got {media_type or 'none'!r})")
    return media_type


async def read_within_limit(request: Request, settings: Settings) -> bytes:
    """The raw request body: 413 when over the size limit."""
    try:
        return await read_limited_body(request, settings.max_body_bytes)
    except BodyTooLarge as error:
        raise PayloadTooLarge(str(error)) from None


async def read_body(request: Request, settings: Settings) -> bytes:
    """The raw request body: 415 unless JSON, 413 when over the size limit."""
    check_media_type(request)
    return await read_within_limit(request, settings)


def parse_json(body: bytes) -> Any:
    """The body as JSON; 400 when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedBody(f"body is not valid JSON ({error.msg} at byte {error.pos})") from None


async def read_json(request: Request, settings: Settings) -> Any:
    """The request body as JSON: 415 unless JSON, 413 when over the size limit, 400 when not JSON."""
    body = await read_body(request, settings)
    if len(body) > INLINE_PARSE_BYTES:
        return await anyio.to_thread.run_sync(parse_json, body)
    return parse_json(body)
