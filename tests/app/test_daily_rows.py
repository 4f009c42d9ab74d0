"""A daily list's rows are the same after the list computation was made faster: the fixture holds
what the code computed before (tests/app/fixtures/daily_rows.json: the sha256 of every ranked row
and of the default list as stored, per date), so a change in any score, reason, order or field shows."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from app_helpers import MODELS_DIR

from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyOptions, DailyQuery
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import Repository
from app.platform.storage.tables import issued_lists

FIXTURE = Path(__file__).parent / "fixtures" / "daily_rows.json"
EXPECTED: dict[str, dict[str, Any]] = json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module", params=[False, True], ids=["in-thread", "child-process"])
def lists(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DailyLists:
    """Ranked in the server's thread, or in a forked child that sends its rows back as JSON."""
    registry = ModelRegistry(MODELS_DIR, None)
    registry.reload()
    repository = Repository.open(f"sqlite:///{tmp_path_factory.mktemp('rows') / 'rows.sqlite3'}")
    options = DailyOptions(child_process=request.param)
    return DailyLists(CityStore(Settings().data_dir), registry, lambda: repository, options)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ranked_rows_and_stored_list_are_unchanged(lists: DailyLists, name: str) -> None:
    expected = EXPECTED[name]
    ranked = lists.ranked_day(expected["city"], date.fromisoformat(expected["date"]))
    assert ranked.model.version == expected["model_version"]
    assert len(ranked.rows) == expected["in_scope"]
    assert ranked.rows[:3] == expected["first_rows"]
    digest = hashlib.sha256(orjson.dumps(list(ranked.rows), option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == expected["rows_sha256"]
    issued = lists.issue(DailyQuery(expected["city"], ranked.list_date, 100))
    with lists.repository().engine.connect() as connection:
        content = connection.execute(
            sa.select(issued_lists.c.content_sha256).where(issued_lists.c.id == issued.id)
        ).scalar()
    assert content == expected["list_content_sha256"]
