"""The partner routes' body reader: whole bodies in any number of messages, limits before and while
reading, and a client that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from app.platform.bodies import BodyTooLarge, read_limited_body


def request(
    messages: Sequence[dict[str, Any]], content_length: int | None = None
) -> tuple[Request, list[int]]:
    """A request whose `receive` hands out `messages` in turn; the list counts the calls."""
    calls: list[int] = []
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        calls.append(1)
        return pending.pop(0)

    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive), calls


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


def read(message_list: Sequence[dict[str, Any]], limit: int, content_length: int | None = None) -> bytes:
    return asyncio.run(read_limited_body(request(message_list, content_length)[0], limit))


def test_a_body_in_several_messages_is_read_whole() -> None:
    assert read([body(b'{"a": ', more=True), body(b"", more=True), body(b"1}")], 100) == b'{"a": 1}'
    assert read([body(b"")], 100) == b""
    assert read([{"type": "http.request"}], 100) == b""  # body and more_body are optional in ASGI


def test_limits_hold_before_and_while_reading() -> None:
    declared, calls = request([body(b"x" * 10)], content_length=101)
    with pytest.raises(BodyTooLarge, match="101 bytes is over the 100-byte limit"):
        asyncio.run(read_limited_body(declared, 100))
    assert not calls  # refused by its Content-Length, unread
    streamed, calls = request([body(b"x" * 60, more=True), body(b"x" * 60, more=True), body(b"x")])
    with pytest.raises(BodyTooLarge, match="over the 100-byte limit"):
        asyncio.run(read_limited_body(streamed, 100))
    assert len(calls) == 2  # stopped at the message that passed the limit
    assert read([body(b"x" * 100)], 100) == b"x" * 100  # the limit itself is allowed


def test_a_client_that_goes_away_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        read([body(b"{", more=True), {"type": "http.disconnect"}], 100)
