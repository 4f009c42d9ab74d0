"""Point-in-time correctness: nothing dated on or after the as-of date can change its features.

Every registered feature family has a case in LEAKAGE_CASES; a family without one fails
`test_every_family_has_a_leakage_case`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from training.inspections.features import build_features, registry
from training.inspections.ingest import CityData, EventTable
from training.points import to_day, to_xyz

AS_OF = pd.Timestamp("2014-03-06")


def _queries(data: CityData) -> pd.DataFrame:
    rows = data.inspections[data.inspections["date"] == AS_OF]
    assert len(rows) > 20, "the as-of date should have inspections to test"
    return rows.reset_index(drop=True)


def _add_events(table: EventTable, days: np.ndarray, xyz: np.ndarray) -> EventTable:
    day = np.concatenate([table.day, days])
    points = np.concatenate([table.xyz, xyz])
    order = np.argsort(day, kind="stable")
    return dataclasses.replace(table, day=day[order], xyz=points[order])


def _rewrite_future(data: CityData, queries: pd.DataFrame) -> CityData:
    """Change every row dated on/after AS_OF and append many new ones there, right at the queries."""
    inspections = data.inspections.copy()
    future = inspections["date"] >= AS_OF
    inspections.loc[future, "label"] = 1 - inspections.loc[future, "label"]
    inspections.loc[future, "failed"] = 1
    inspections.loc[future, ["n_critical", "n_serious", "n_minor"]] = 9
    inspections.loc[future, "score"] = 99.0
    appended = queries.copy()
    appended["inspection_id"] = "future-" + appended["inspection_id"]
    appended["label"], appended["failed"], appended["n_critical"] = 1, 1, 5
    appended["has_outcome"] = True
    for offset in (0, 1, 30):
        inspections = pd.concat(
            [inspections, appended.assign(date=AS_OF + pd.Timedelta(days=offset))], ignore_index=True
        )

    query_xyz = to_xyz(queries["latitude"].fillna(41.88), queries["longitude"].fillna(-87.63))
    future_days = np.full(len(queries), to_day(pd.Series([AS_OF]))[0])
    events = tuple(_add_events(table, future_days, query_xyz) for table in data.events)

    weather = data.weather.copy()
    weather[weather.index >= future_days[0]] = 150.0

    licenses = data.licenses.copy()
    accounts = licenses[licenses["establishment_id"].isin(queries["establishment_id"])]
    new = accounts.drop_duplicates("account_id").assign(description="Tobacco", term_start=AS_OF)
    new_own = queries[["establishment_id"]].assign(
        account_id="new-account", description="Tavern", term_start=AS_OF
    )
    licenses = pd.concat([licenses, new, new_own], ignore_index=True)
    return dataclasses.replace(
        data, inspections=inspections, events=events, weather=weather, licenses=licenses
    )


@dataclasses.dataclass(frozen=True)
class LeakageCase:
    """How to test one family: `rewrite` changes and adds rows dated on/after AS_OF in what the family
    reads; `changes` are columns that same rewrite must change when the queries are one day later
    (proof that the test could fail). A family that reads no data has none."""

    changes: tuple[str, ...]
    rewrite: Callable[[CityData, pd.DataFrame], CityData] = _rewrite_future


LEAKAGE_CASES: dict[str, LeakageCase] = {
    "history": LeakageCase(changes=("prior_inspections", "prev_critical")),
    "score": LeakageCase(changes=("prev_score", "past_score_mean")),
    "establishment": LeakageCase(changes=("license_tobacco",)),
    "neighbourhood": LeakageCase(changes=("nearby_critical_share_90d_1km",)),
    "environment": LeakageCase(changes=("sanitation_311_per_km2_90d_1km", "burglaries_per_km2_90d_1km")),
    "area": LeakageCase(changes=("area_critical_share_14d",)),
    "calendar": LeakageCase(changes=()),  # the query date alone
    "weather": LeakageCase(changes=("temperature_max_mean_3d",)),
}


def _only(data: CityData, family: str) -> CityData:
    return dataclasses.replace(data, config=dataclasses.replace(data.config, families=(family,)))


def test_every_family_has_a_leakage_case() -> None:
    assert set(LEAKAGE_CASES) == set(registry.names()), "each registered family needs a leakage case"


@pytest.mark.parametrize("family", registry.names())
def test_future_rows_do_not_change_the_family(chicago_data: CityData, family: str) -> None:
    if family not in LEAKAGE_CASES:
        pytest.fail(f"family {family!r} has no leakage case")
    case, data = LEAKAGE_CASES[family], _only(chicago_data, family)
    queries = _queries(data)
    rewritten = case.rewrite(data, queries)
    pd.testing.assert_frame_equal(build_features(queries, data), build_features(queries, rewritten))

    shifted = queries.assign(date=AS_OF + pd.Timedelta(days=1))
    before, after = build_features(shifted, data), build_features(shifted, rewritten)
    changed = {column for column in before.columns if not before[column].equals(after[column])}
    assert set(case.changes) <= changed, f"unchanged: {sorted(set(case.changes) - changed)}"


def test_future_rows_do_not_change_any_feature(chicago_data: CityData) -> None:
    queries = _queries(chicago_data)
    before = build_features(queries, chicago_data)
    after = build_features(queries, _rewrite_future(chicago_data, queries))
    pd.testing.assert_frame_equal(before, after)


def test_the_day_before_does_change_features(chicago_data: CityData) -> None:
    """The same rewrite one day earlier must show up, or the test above could not fail."""
    queries = _queries(chicago_data)
    shifted = queries.assign(date=AS_OF + pd.Timedelta(days=1))
    before = build_features(shifted, chicago_data)
    after = build_features(shifted, _rewrite_future(chicago_data, queries))
    changed = [column for column in before.columns if not before[column].equals(after[column])]
    expected = {column for case in LEAKAGE_CASES.values() for column in case.changes}
    expected &= set(before.columns)  # families Chicago's config does not build (score) are tested alone
    assert expected <= set(changed), f"unchanged: {sorted(expected - set(changed))}"


@pytest.mark.parametrize("column", ["date", "establishment_id", "latitude"])
def test_build_features_requires_query_columns(chicago_data: CityData, column: str) -> None:
    queries = _queries(chicago_data).drop(columns=[column])
    with pytest.raises(ValueError, match=column):
        build_features(queries, chicago_data)


def test_features_do_not_depend_on_the_query_index(chicago_data: CityData) -> None:
    queries = _queries(chicago_data)
    relabelled = queries.set_axis(range(1000, 1000 + len(queries)))
    pd.testing.assert_frame_equal(
        build_features(queries, chicago_data).reset_index(drop=True),
        build_features(relabelled, chicago_data).reset_index(drop=True),
    )
