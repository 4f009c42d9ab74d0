"""Which city the inspectors' page opens on: the configured one, else the largest in scope."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.inspections.daily import DailyLists
from app.platform.errors import ServiceError

log = logging.getLogger(__name__)


def default_city(lists: DailyLists, cities: Sequence[str], configured: str | None) -> str:
    """`configured` (CIVICRISK_DEFAULT_CITY) when it names one of `cities`; otherwise the city whose
    next list has the most establishments in scope, the earlier name on a tie; "" for no city.

    Blocking: counting ranks each city's next day, which is cached (and computed ahead at start-up
    when CIVICRISK_DAILY_PRECOMPUTE is on, as it is by default)."""
    if configured:
        if configured in cities:
            return configured
        log.warning("CIVICRISK_DEFAULT_CITY names no served city", extra={"city": configured})
    counts = {city: _in_scope(lists, city) for city in cities}
    return max(cities, key=lambda city: (counts[city], -cities.index(city)), default="")


def _in_scope(lists: DailyLists, city: str) -> int:
    try:
        return len(lists.ranked_day(city, None).rows)
    except ServiceError:  # its data cannot be read now: it cannot be the page's default either
        return -1
