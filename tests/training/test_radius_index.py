"""The radius index gives a daily list's neighbourhood features exactly as the k-d trees of training
do: on random points, and on Chicago's real roster, also after outcomes were recorded (points the
index lacks) and for a place it does not hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from training.inspections.config import load_city_config
from training.inspections.features import neighbourhood
from training.inspections.features.radius_index import RadiusIndex, count_unindexed
from training.inspections.ingest import CityData, load_city, with_recorded_outcomes
from training.inspections.roster import establishments_in_scope

CHICAGO = Path(__file__).resolve().parents[2] / "data" / "sample" / "chicago" / "city.toml"


def test_counts_equal_a_tree_over_the_window_for_any_window() -> None:
    rng = np.random.default_rng(7)
    locations = rng.uniform(0, 10, size=(300, 3))
    points = np.vstack([rng.uniform(0, 10, size=(4000, 3)), locations[:50]])  # some exactly on a place
    days = np.sort(rng.integers(100, 600, size=len(points)))
    flags = rng.random(len(points)) < 0.3
    index = RadiusIndex(np.unique(locations, axis=0), points, days, flags, (1.0, 2.5))
    rows = index.rows_of(locations)
    assert (rows >= 0).all()
    for first, end in [(50, 120), (100, 101), (250, 400), (590, 700), (0, 1_000), (700, 800), (300, 300)]:
        window = (days >= first) & (days < end)
        counted = index.count(rows, first, end)
        for radius in (1.0, 2.5):
            totals, hits = counted[radius]
            tree = cKDTree(points[window]) if window.any() else None
            expected = tree.query_ball_point(locations, radius, return_length=True) if tree else 0
            flagged = window & flags
            flagged_tree = cKDTree(points[flagged]) if flagged.any() else None
            expected_hits = (
                flagged_tree.query_ball_point(locations, radius, return_length=True) if flagged_tree else 0
            )
            np.testing.assert_array_equal(totals, expected)
            np.testing.assert_array_equal(hits, expected_hits)
            direct, direct_hits = count_unindexed(locations, points[window], flags[window], radius)
            np.testing.assert_array_equal(direct, expected)
            np.testing.assert_array_equal(direct_hits, expected_hits)
    assert (index.rows_of(locations + 1e-9) == -1).all()  # exact places only


@pytest.fixture(scope="module")
def chicago() -> CityData:
    return load_city(load_city_config(CHICAGO))


def _roster_queries(data: CityData, date: str) -> pd.DataFrame:
    day = pd.Timestamp(date)
    queries = establishments_in_scope(data, day).assign(date=day)
    assert len(queries) >= neighbourhood.INDEX_MIN_QUERIES  # the index path is the one tested
    return queries


def _features(queries: pd.DataFrame, data: CityData) -> pd.DataFrame:
    config = data.config
    nearby = neighbourhood.nearby_outcome_features(
        queries,
        data.inspections,
        config.neighbourhood_radii_km,
        config.neighbourhood_windows_days,
        config.neighbourhood_nearest,
    )
    events = neighbourhood.event_density_features(queries, data.events, data.inspections)
    return pd.concat([nearby, events], axis=1)


def _with_trees_only(queries: pd.DataFrame, data: CityData, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    with monkeypatch.context() as patched:
        patched.setattr(neighbourhood, "INDEX_MIN_QUERIES", 10**9)
        return _features(queries, data)


def test_a_roster_s_features_equal_the_trees_features(
    chicago: CityData, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = _roster_queries(chicago, "2014-08-05")
    # One establishment moved to a place no inspection ever was: counted by the trees' path.
    queries.loc[queries.index[0], "latitude"] += 0.0001234
    indexed = _features(queries, chicago)
    pd.testing.assert_frame_equal(indexed, _with_trees_only(queries, chicago, monkeypatch))


def test_outcomes_recorded_later_are_counted_without_rebuilding(
    chicago: CityData, monkeypatch: pytest.MonkeyPatch
) -> None:
    _features(_roster_queries(chicago, "2014-06-02"), chicago)  # the index of the files' data
    latest = chicago.inspections.sort_values("date").groupby("establishment_id").tail(1).head(40)
    recorded = pd.DataFrame(
        {
            "inspection_id": [f"recorded-{n}" for n in range(len(latest))],
            "establishment_id": latest["establishment_id"].to_numpy(),
            "date": pd.Timestamp("2014-08-25"),
            "result": "Fail",
            "violations": "3. POTENTIALLY HAZARDOUS FOOD MEETS TEMPERATURE REQUIREMENT - Comments: x",
        }
    )
    data = with_recorded_outcomes(chicago, recorded)
    assert len(data.inspections) == len(chicago.inspections) + len(latest)
    built = len(neighbourhood._indexes)
    queries = _roster_queries(data, "2014-09-01")
    features = _features(queries, data)
    assert len(neighbourhood._indexes) == built  # the same index, the new rows counted directly
    pd.testing.assert_frame_equal(features, _with_trees_only(queries, data, monkeypatch))
