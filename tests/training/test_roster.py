"""The daily roster is who a plain reading of its definition puts in scope: each establishment's
latest inspection with an outcome before the date, within the configured window, licensed on the
date where the city asks for it, sorted by establishment id."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.inspections.config import load_city_config
from training.inspections.ingest import CityData, load_city
from training.inspections.roster import ROSTER_COLUMNS, establishments_in_scope

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="module")
def chicago() -> CityData:
    return load_city(load_city_config(SAMPLE / "chicago" / "city.toml"))


def plainly_in_scope(data: CityData, day: pd.Timestamp) -> pd.DataFrame:
    """The roster's definition in pandas' own words (slow: a sort and a group-by a date)."""
    inspections = data.inspections
    usable = inspections[
        inspections["has_outcome"]
        & inspections["establishment_id"].notna()
        & inspections["date"].notna()
        & (inspections["date"] < day)
    ]
    ordered = usable.sort_values(["date", "inspection_id"], kind="stable")
    latest = ordered.groupby("establishment_id", sort=False).tail(1)
    latest = latest[latest["date"] >= day - pd.Timedelta(days=data.config.roster_inspected_within_days)]
    licences = data.licenses
    if data.config.roster_require_active_license and licences is not None:
        active = licences[(licences["term_start"] <= day) & (licences["term_end"] >= day)]
        latest = latest[latest["establishment_id"].isin(set(active["establishment_id"].tolist()))]
    return latest.sort_values("establishment_id", kind="stable")


@pytest.mark.parametrize("day", ["2012-09-01", "2013-06-30", "2014-08-30", "2014-09-12", "2011-09-02"])
def test_the_roster_is_its_definition(chicago: CityData, day: str) -> None:
    date = pd.Timestamp(day)
    roster = establishments_in_scope(chicago, date)
    expected = plainly_in_scope(chicago, date)
    assert list(roster.columns[: len(ROSTER_COLUMNS)]) == list(ROSTER_COLUMNS)
    assert roster["establishment_id"].tolist() == expected["establishment_id"].tolist()
    assert roster["last_inspection_date"].tolist() == expected["date"].tolist()
    assert roster["last_result"].tolist() == expected["result"].tolist()
    assert roster.index.tolist() == list(range(len(roster)))
    if day == "2011-09-02":  # the data's first day: nothing inspected before it
        assert roster.empty
