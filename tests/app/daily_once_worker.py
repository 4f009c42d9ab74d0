"""A worker asking for a daily list at the same moment as another, run in a process of its own by
tests/app/test_daily_once.py (a module of its own so that the process imports little)."""

from __future__ import annotations

from datetime import date
from typing import Any

from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyQuery
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import Repository


def issue_at_once(url: str, models_dir: str, day: str, start: Any, results: Any) -> None:
    registry = ModelRegistry(Settings(models_dir=models_dir).models_dir, None)
    registry.reload()
    repository = Repository.open(url)
    lists = DailyLists(CityStore(Settings().data_dir), registry, lambda: repository)
    lists.city_data("chicago")  # the city's files read before the race: the race is the list's
    start.wait()
    issued = lists.issue(DailyQuery("chicago", date.fromisoformat(day), 20))
    results.put((lists.pool.computations, issued.id, [row["establishment_id"] for row in issued.rows]))
