"""A daily list's rows are the same after the list computation was made faster: the fixture holds
what the code computed before (tests/app/fixtures/daily_rows.json: the sha256 of every ranked row
and of the default list as stored, per date), so a change in any score, reason, order or field shows.

The digests are of the rows with every number to 8 significant digits (the packed inputs decoded):
numpy's AVX-512 kernels (Intel hosts) and its AVX2 ones (the AMD hosts the fixture was first made on)
differ in the last bits of a few values (measured: 24 of ~1.5 million, relative 2e-13 at most), and a
test that fails on another CPU says nothing about the code. Everything else (order, ids, tiers,
reasons' names, words) is compared exactly."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
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
SIGNIFICANT_DIGITS = 8


def _portable(value: Any) -> Any:
    """`value` with its floats (and the packed float64 inputs of pending reasons) to 8 digits."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {
            key: _portable(np.frombuffer(base64.b64decode(item), np.float64).tolist())
            if key == "inputs" and isinstance(item, str)
            else _portable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_portable(item) for item in value]
    return value


def portable_json(rows: Any) -> bytes:
    """The rows as `_portable` gives them, as JSON (NaN written as null)."""
    return orjson.dumps(_portable(rows), option=orjson.OPT_SORT_KEYS)


def portable_digest(rows: Any) -> str:
    return hashlib.sha256(portable_json(rows)).hexdigest()


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
    assert portable_json(list(ranked.rows[:3])) == portable_json(expected["first_rows"])
    assert portable_digest(list(ranked.rows)) == expected["rows_sha256"]
    issued = lists.issue(DailyQuery(expected["city"], ranked.list_date, 100))
    with lists.repository().engine.connect() as connection:
        stored = connection.execute(
            sa.select(issued_lists.c.parameters, issued_lists.c.rows).where(issued_lists.c.id == issued.id)
        ).one()
    assert portable_digest([stored.parameters, stored.rows]) == expected["list_sha256"]
