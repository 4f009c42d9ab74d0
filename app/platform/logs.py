"""Structured logs: one JSON object per line on stderr.

Callers pass facts through `extra={...}`; request bodies and keys are never among them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson

from app.platform.clock import MillisecondClock
from app.platform.partner_context import ACCESS_LOGGER, CURRENT_PARTNER, PartnerFilter

# A record may carry its facts as one dict under this attribute (the access log does: one line per
# request, so it skips the scan of every attribute below); other records carry them from `extra`.
FACTS = "facts"
ACCESS_MESSAGE = "request"
CLOCK = MillisecondClock()  # every line's ts, written by JsonFormatter and the access-line writer
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": CLOCK.format(record.created),  # datetime.isoformat's text (tests/app/test_clock.py)
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        facts = getattr(record, FACTS, None)
        if facts is not None:  # the access log's line: its facts, and the partner its filter added
            entry.update(facts)
            entry["partner"] = getattr(record, "partner", None)
        else:
            for key, value in vars(record).items():
                if key not in _STANDARD and not key.startswith("_"):
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class AccessLineHandler(logging.StreamHandler[TextIO]):
    """The access log's own handler in the server process (`configure_logging`).

    `write` puts out the line JsonFormatter would write for the request's facts, without building a
    LogRecord and passing it through the logger's filters, the handler chain and the generic
    formatter: on a loaded core that path cost ~20 µs a request, a fifth of a single-record score
    (bench/README.md). The request middleware calls `write` only while this handler is the access
    logger's whole configuration (`direct_access_handler`); records logged the usual way are
    formatted by its JsonFormatter like any other."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.setFormatter(JsonFormatter())

    def write(self, facts: dict[str, Any]) -> None:
        entry: dict[str, Any] = {
            "ts": CLOCK.now(),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": ACCESS_MESSAGE,
        }
        entry.update(facts)
        entry["partner"] = CURRENT_PARTNER.get()
        line = orjson.dumps(entry, default=str).decode() + self.terminator
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.stream.write(line)
            self.stream.flush()


def direct_access_handler(logger: logging.Logger) -> AccessLineHandler | None:
    """The logger's AccessLineHandler when writing to it directly gives exactly what logging would:
    it is the logger's only handler, nothing propagates further, and no filter but the partner one
    (whose work `write` does) is set on either. None otherwise (a test capturing records, a custom
    logging configuration): the caller then logs the usual way."""
    handlers = logger.handlers
    if len(handlers) != 1 or logger.propagate:
        return None
    handler = handlers[0]
    if type(handler) is not AccessLineHandler or handler.filters or handler.level > logging.INFO:
        return None
    if any(type(found) is not PartnerFilter for found in logger.filters):
        return None
    return handler


def configure_logging(level: str) -> None:
    """Route our loggers and uvicorn's through one JSON handler; uvicorn's own access log is off
    because the request middleware writes a structured one."""
    # Nothing here writes thread or process names, so LogRecord need not look them up (the logging
    # HOWTO's "Optimization" section); it is done on every request's access line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The access log writes the same JSON lines to the same stream, through its own handler.
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers[:] = [AccessLineHandler(sys.stderr)]
    access.propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
