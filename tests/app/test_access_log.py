"""The server's access-log handler writes exactly the line logging would, and only when that is so."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from app_helpers import PARTNER, SCORE_URL, make_settings
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.logs import FACTS, AccessLineHandler, JsonFormatter, direct_access_handler
from app.platform.partner_context import ACCESS_LOGGER, CURRENT_PARTNER, PartnerFilter, install_partner_filter

FACTS_SEEN = {"method": "POST", "route": "/v1/lead/risk", "status": 200, "model": None, "duration_ms": 1.5}


@contextmanager
def server_logging() -> Iterator[io.StringIO]:
    """The access logger as `configure_logging` sets it up in the server, writing to a buffer. Entered
    in the test itself: pytest adds its capture handlers to non-propagating loggers when each test
    phase starts, and with another handler the middleware rightly logs the usual way."""
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = logger.handlers[:], logger.propagate, logger.level
    stream = io.StringIO()
    install_partner_filter()
    logger.handlers[:] = [AccessLineHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def test_the_direct_line_is_the_formatted_record() -> None:
    stream = io.StringIO()
    token = CURRENT_PARTNER.set("Lurie Children's")
    try:
        AccessLineHandler(stream).write(dict(FACTS_SEEN))
        record = logging.getLogger(ACCESS_LOGGER).makeRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, "request", (), None, None, {FACTS: dict(FACTS_SEEN)}
        )
        PartnerFilter().filter(record)
    finally:
        CURRENT_PARTNER.reset(token)
    direct = orjson.loads(stream.getvalue())
    formatted = orjson.loads(JsonFormatter().format(record))
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1
    assert list(direct) == list(formatted)  # the same fields in the same order
    direct.pop("ts"), formatted.pop("ts")  # written a moment apart
    assert direct == formatted
    assert direct["partner"] == "Lurie Children's" and direct["logger"] == ACCESS_LOGGER


def test_direct_writing_only_in_the_server_configuration() -> None:
    with server_logging():
        _only_when_nothing_else_would_see_the_line(logging.getLogger(ACCESS_LOGGER))


def _only_when_nothing_else_would_see_the_line(logger: logging.Logger) -> None:
    assert isinstance(direct_access_handler(logger), AccessLineHandler)
    logger.propagate = True  # a parent handler would miss the line
    assert direct_access_handler(logger) is None
    logger.propagate = False
    logger.addFilter(extra := logging.Filter("nothing"))  # a filter direct writing would skip
    assert direct_access_handler(logger) is None
    logger.removeFilter(extra)
    second = logging.StreamHandler(io.StringIO())
    logger.addHandler(second)
    assert direct_access_handler(logger) is None
    logger.removeHandler(second)
    logger.handlers[0].setLevel(logging.WARNING)
    assert direct_access_handler(logger) is None


def test_the_service_writes_its_access_lines_directly(full_record: dict[str, object]) -> None:
    marker = "Marker-Zebra-4410"
    emitted: list[logging.LogRecord] = []
    with server_logging() as lines_written, TestClient(create_app(make_settings())) as client:
        handler = logging.getLogger(ACCESS_LOGGER).handlers[0]
        handler.emit = emitted.append  # type: ignore[method-assign]  # the usual way, if it were taken
        assert client.post(SCORE_URL, json={"records": [full_record]}, headers=PARTNER).status_code == 200
        client.post(SCORE_URL, json={"records": [{marker: 1}]}, headers=PARTNER)
        client.post(SCORE_URL, json={"records": [full_record]}, headers={"X-API-Key": marker})
    lines = [orjson.loads(line) for line in lines_written.getvalue().splitlines()]
    assert [(line["route"], line["status"]) for line in lines] == [(SCORE_URL.replace(
        "chicago-food-inspections", "{name}"), status) for status in (200, 422, 401)]  # fmt: skip
    assert lines[0]["partner"].startswith("env-key-") and lines[2]["partner"] is None
    assert set(lines[0]) == {"ts", "level", "logger", "message", "method", "route", "status", "model",
                             "duration_ms", "partner"}  # fmt: skip
    assert marker not in lines_written.getvalue()
    assert emitted == []  # every line written directly, none through a LogRecord
