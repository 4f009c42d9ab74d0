"""How old the newest inspection outcome behind a city's daily list is, and whether that is too old.

A list ranks establishments from the outcomes the service holds (the city's files plus outcomes
posted to `POST /v1/inspections/{city}/outcomes`). When outcomes stop arriving the list still comes,
but its history features freeze and its accuracy decays (issue #21 measured how fast). So every
daily list says how many days old its newest outcome is, counted to the city's today (in its
`[city].timezone`), and warns past
CIVICRISK_OUTCOMES_MAX_AGE_DAYS; `/metrics` exports the age per city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.inspections.daily import DailyLists
from app.platform.metrics import ServiceMetrics
from app.platform.settings import Settings
from training.serving import CityData, today_in

HEADER_NEWEST = "X-Data-Newest-Outcome"
HEADER_AGE = "X-Data-Age-Days"
HEADER_STALE = "X-Data-Stale"
STALENESS_HEADERS = {  # OpenAPI: the daily list's headers (on the CSV and the JSON alike)
    HEADER_NEWEST: {"description": "Date of the newest inspection outcome", "schema": {"type": "string"}},
    HEADER_AGE: {"description": "Days from it to the city's today", "schema": {"type": "integer"}},
    HEADER_STALE: {
        "description": "true when that is more than CIVICRISK_OUTCOMES_MAX_AGE_DAYS",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}


@dataclass(frozen=True)
class Staleness:
    newest_outcome: date
    age_days: int
    max_age_days: int

    @property
    def stale(self) -> bool:
        return self.age_days > self.max_age_days

    @property
    def warning(self) -> str | None:
        if not self.stale:
            return None
        return (
            f"the newest inspection outcome the list rests on is from {self.newest_outcome.isoformat()}, "
            f"{self.age_days} days ago (more than {self.max_age_days}): post outcomes to "
            "/v1/inspections/{city}/outcomes so the ranking keeps learning"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "newest_outcome": self.newest_outcome.isoformat(),
            "age_days": self.age_days,
            "max_age_days": self.max_age_days,
            "stale": self.stale,
            "warning": self.warning,
        }

    def headers(self) -> dict[str, str]:
        return {
            HEADER_NEWEST: self.newest_outcome.isoformat(),
            HEADER_AGE: str(self.age_days),
            HEADER_STALE: "true" if self.stale else "false",
        }


def newest_outcome(data: CityData) -> date:
    """The latest inspection date among the city's rows with an outcome (files and posted ones)."""
    inspections = data.inspections
    dated = inspections.loc[inspections["has_outcome"].astype(bool), "date"]
    latest = dated.max() if len(dated) else inspections["date"].max()
    return date.fromisoformat(str(latest)[:10])


def staleness(data: CityData, today: date, max_age_days: int) -> Staleness:
    newest = newest_outcome(data)
    return Staleness(newest, max(0, (today - newest).days), max_age_days)


def observe(lists: DailyLists, city: str, max_age_days: int, metrics: ServiceMetrics) -> Staleness:
    """Blocking: the city's staleness now, also set in /metrics: the newest outcome of its files or
    posted to the service. Read from the files and one database query, not from the city's data with
    every posted outcome merged in: that rebuild, once per post per worker, is what daily requests
    must not pay (app/inspections/city_data.py). Posted outcomes whose result the city drops are left
    out, as the list's history leaves them out."""
    files = lists.cities.city(city).data
    newest = newest_outcome(files)
    posted = lists.repository().newest_posted_outcome(city, tuple(files.config.drop_results))
    if posted is not None and posted > newest:
        newest = posted
    today = today_in(files.config.timezone)
    found = Staleness(newest, max(0, (today - newest).days), max_age_days)
    metrics.outcomes_age_days.labels(city).set(found.age_days)
    return found


def refresh_metrics(lists: DailyLists, settings: Settings, metrics: ServiceMetrics) -> None:
    """Blocking, before a scrape: the age of every city whose data this process has read (a scrape
    never loads a city's files). Each worker reads the same files and database, so any gives the
    same value; the gauge keeps the most recently written one across workers."""
    metrics.outcomes_max_age_days.set(settings.outcomes_max_age_days)
    for city in lists.loaded_cities():
        observe(lists, city, settings.outcomes_max_age_days, metrics)
