"""The authenticated partner of the current request, for the access log.

The access-log line is written by the request middleware after the route returns. The route's key
check runs in the same task (async dependencies and plain routes are awaited, not spawned), so a
context variable set there is visible when the line is written, and each request (its own task in
uvicorn) starts without one. A logging filter adds it to the access log's lines as `partner`; nothing
else about the caller (no key, no body) is ever added.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

CURRENT_PARTNER: ContextVar[str | None] = ContextVar("civicrisk_partner", default=None)
ACCESS_LOGGER = "civicrisk.access"


class PartnerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.partner = CURRENT_PARTNER.get()
        return True


def install_partner_filter() -> None:
    """Add the filter to the access logger once per process (create_app may run many times)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, PartnerFilter) for existing in logger.filters):
        logger.addFilter(PartnerFilter())
