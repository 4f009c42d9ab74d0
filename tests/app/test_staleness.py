"""The daily list's staleness: how old its newest outcome is, and when that is too old."""

from __future__ import annotations

from datetime import date

from app.inspections.cities import CityStore
from app.inspections.staleness import newest_outcome, staleness
from app.platform.metrics import ServiceMetrics
from app.platform.settings import Settings


def test_age_is_counted_to_today_and_warns_only_past_the_limit() -> None:
    data = CityStore(Settings().data_dir).city("boston").data
    assert newest_outcome(data) == date(2013, 12, 31)
    fresh = staleness(data, date(2014, 1, 14), max_age_days=14)
    assert (fresh.age_days, fresh.stale, fresh.warning) == (14, False, None)
    assert fresh.headers() == {
        "X-Data-Newest-Outcome": "2013-12-31",
        "X-Data-Age-Days": "14",
        "X-Data-Stale": "false",
    }
    old = staleness(data, date(2014, 1, 15), max_age_days=14)
    assert old.as_json() | {"warning": None} == {
        "newest_outcome": "2013-12-31",
        "age_days": 15,
        "max_age_days": 14,
        "stale": True,
        "warning": None,
    }
    assert old.warning is not None and "15 days ago" in old.warning


def test_a_failing_update_before_a_scrape_does_not_fail_the_scrape() -> None:
    metrics = ServiceMetrics()

    def broken() -> None:
        raise RuntimeError("database down")

    metrics.on_scrape.append(broken)
    metrics.on_scrape.append(lambda: metrics.outcomes_age_days.labels("chicago").set(3))
    metrics.refresh()
    assert b'civicrisk_outcomes_age_days{city="chicago"} 3.0' in metrics.render()
