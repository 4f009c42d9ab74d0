"""Structured logs: one JSON object per line on stderr.

Callers pass facts through `extra={...}`; request bodies and keys are never among them.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# A record may carry its facts as one dict under this attribute (the access log does: one line per
# request, so it skips the scan of every attribute below); other records carry them from `extra`.
FACTS = "facts"
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
