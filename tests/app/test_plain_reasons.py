"""The daily list's reasons in plain words: one reason per group of correlated features, one net
direction each, on every row of a full Chicago and Boston list (every establishment in scope)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_helpers import MODELS_DIR

from app.inspections.cities import CityStore
from app.inspections.daily import DailyLists, DailyQuery
from app.inspections.reasons import feature_groups
from app.platform.registry import ModelRegistry
from app.platform.settings import Settings
from app.platform.storage.repository import IssuedList, Repository

CITIES = {"chicago": "critical", "boston": "severe"}


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> DailyLists:
    registry = ModelRegistry(MODELS_DIR, None)
    registry.reload()
    database: Path = tmp_path_factory.mktemp("reasons") / "lists.sqlite3"
    repository = Repository.open(f"sqlite:///{database}")
    return DailyLists(CityStore(Settings().data_dir), registry, lambda: repository)


@pytest.fixture(scope="module", params=sorted(CITIES))
def full_list(request: pytest.FixtureRequest, lists: DailyLists) -> IssuedList:
    """Every establishment in scope for the city's default date, as issued and stored."""
    issued = lists.issue(DailyQuery(request.param, None, 10_000))
    assert len(issued.rows) == issued.parameters["in_scope"] > 1000
    return issued


def _reasons(issued: IssuedList) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for row in issued.rows:
        for reason in row["reasons"]:
            yield row, reason


def test_one_reason_per_group_and_one_direction_on_every_row(
    full_list: IssuedList, lists: DailyLists
) -> None:
    layout = lists.model_for(full_list.city).layout
    groups = feature_groups(layout)
    group_of = {layout.names[j]: groups.names[k] for j, k in enumerate(groups.group_of)}
    for row in full_list.rows:
        named = [reason["feature"] for reason in row["reasons"]]
        assert len(named) == len(set(named)), (row["establishment_id"], named)
        assert 1 <= len(named) <= 3
        members = [member["feature"] for reason in row["reasons"] for member in reason["members"]]
        assert len(members) == len(set(members))  # no feature explained twice
        assert all(m["contribution"] != 0 for r in row["reasons"] for m in r["members"])
        magnitudes = [abs(reason["contribution"]) for reason in row["reasons"]]
        assert magnitudes == sorted(magnitudes, reverse=True)
        for reason in row["reasons"]:
            text, total = reason["text"], reason["contribution"]
            directions = re.findall(r"\b(raises|lowers)\b", text)
            assert directions == ["raises" if total > 0 else "lowers"], text
            assert "log-odds" not in text and "weighted by recency" not in text
            assert all(group_of[m["feature"]] == reason["feature"] for m in reason["members"])
            listed = sum(m["contribution"] for m in reason["members"])
            assert math.isclose(total, listed + reason["other_members"]["contribution"], abs_tol=1e-9)
            assert len(reason["members"]) <= 6 and reason["other_members"]["count"] >= 0
            member_sizes = [abs(m["contribution"]) for m in reason["members"]]
            assert member_sizes == sorted(member_sizes, reverse=True)


def test_groups_do_hide_contradicting_members(full_list: IssuedList) -> None:
    """The check above matters: within one group, members often pull opposite ways (what used to
    give "raises" and "lowers" about the same history on one row)."""
    mixed = sum(
        1
        for _, reason in _reasons(full_list)
        if {m["contribution"] > 0 for m in reason["members"]} == {True, False}
    )  # counted over the listed members only: a lower bound
    assert mixed > len(full_list.rows) // 10


def test_facts_can_be_checked_against_the_row(full_list: IssuedList) -> None:
    """The words are facts from the row: a failed last inspection names the row's last date, and
    the label's class is called by the city's own word."""
    word = CITIES[full_list.city]
    failed = 0
    for row, reason in _reasons(full_list):
        text = reason["text"]
        found = re.search(r"Failed its last inspection \((\d{4}-\d\d-\d\d)\)", text)
        if found:
            failed += 1
            assert found[1] == row["last_inspection_date"]
            assert row["last_result"] == "Fail"
        counted = re.search(r"(\d+) (\w+) violations?\b", text)
        if counted and counted[2] in ("critical", "severe"):
            assert counted[2] == word, text
    if full_list.city == "chicago":
        assert failed > 0
