"""The radius index gives a daily list's neighbourhood features exactly as the k-d trees of training
do: on random points, and on Chicago's real roster, also after outcomes were recorded (points the
index lacks) and for a place it does not hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from training.inspections import frame_memo
from training.inspections.config import load_city_config
from training.inspections.features import neighbourhood, radius_index
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
            direct, direct_hits = count_unindexed(locations, points[window], flags[window], (1.0, 2.5))[
                radius
            ]
            np.testing.assert_array_equal(direct, expected)
            np.testing.assert_array_equal(direct_hits, expected_hits)
    assert (index.rows_of(locations + 1e-9) == -1).all()  # exact places only
    # The last answer is remembered for the same places asked again, never for others.
    assert index.rows_of(locations) is index.rows_of(locations.copy())
    np.testing.assert_array_equal(index.rows_of(locations[::-1]), rows[::-1])


def test_distinct_places_through_their_rows_or_without() -> None:
    rng = np.random.default_rng(3)
    locations = rng.uniform(0, 10, size=(40, 3))
    index = RadiusIndex(locations, locations[:5], np.arange(5), None, (1.0,))
    asked = locations[rng.integers(0, 40, size=200)]  # places asked several times each
    for queries in (asked, np.vstack([asked, locations[:2] + 0.5])):  # all held; one not
        places, position = index.location_rows.distinct(queries)
        np.testing.assert_array_equal(places[position], queries)
        assert len(places) == len(np.unique(queries, axis=0))
    # Where all are held, along the Z-order curve: each place's code no smaller than the last one's.
    places, _ = index.location_rows.distinct(asked)
    codes = radius_index._morton_codes(locations)[index.rows_of(places)]
    assert (np.diff(codes.astype(np.int64)) > 0).all()
    # Interleaved bits: x's lowest bit first, then y's, then z's.
    corners = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert radius_index._morton_codes(corners, bits=1).tolist() == [0, 1, 2, 4, 7]


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


def test_repeated_points_are_kept_once_and_each_counted() -> None:
    """Many points at one place on one day (outcomes posted for one establishment) take the memory
    of one: the index keeps a repeated key once, with how many there are."""
    rng = np.random.default_rng(11)
    locations = np.unique(rng.uniform(0, 10, size=(200, 3)), axis=0)
    spread = rng.uniform(0, 10, size=(300, 3))
    points = np.vstack([spread, np.repeat(locations[:1] + 0.3, 5_000, axis=0)])
    days = np.concatenate([rng.integers(100, 200, size=len(spread)), np.full(5_000, 150)])
    flags = np.concatenate([rng.random(len(spread)) < 0.3, np.arange(5_000) % 2 == 0])
    order = np.argsort(days, kind="stable")
    points, days, flags = points[order], days[order], flags[order]
    index = RadiusIndex(locations, points, days, flags, (1.0, 2.5))
    near_repeated = int((((locations - (locations[0] + 0.3)) ** 2).sum(axis=1) <= 2.5**2).sum())
    assert index.nbytes < near_repeated * 5_000 * 4 // 10  # not one key per repeated pair
    rows = index.rows_of(locations)
    for first, end in [(100, 151), (150, 151), (151, 300), (0, 1_000)]:
        window = (days >= first) & (days < end)
        counted = index.count(rows, first, end)
        for radius in (1.0, 2.5):
            expected, expected_hits = count_unindexed(locations, points[window], flags[window], (1.0, 2.5))[
                radius
            ]
            np.testing.assert_array_equal(counted[radius][0], expected)
            np.testing.assert_array_equal(counted[radius][1], expected_hits)


def test_many_outcomes_recorded_later_get_an_index_of_their_own_not_a_new_base(
    chicago: CityData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_UNINDEXED points the first index lacks, those points are indexed apart: the first
    index (in a server, shared by its list processes) stays the one object, and the features are
    still exactly the trees'."""
    monkeypatch.setattr(neighbourhood, "MAX_UNINDEXED", 10)
    # Indexes of this city's data from earlier tests (other data, the same key) out of the way.
    monkeypatch.setattr(neighbourhood, "_indexes", {})
    monkeypatch.setattr(frame_memo, "_per_frame", {})
    _features(_roster_queries(chicago, "2014-06-02"), chicago)
    base_key = next(key for key in neighbourhood._indexes if key[0] == "nearby")
    base = neighbourhood._indexes[base_key][1]
    latest = chicago.inspections.sort_values("date").groupby("establishment_id").tail(1)

    def recorded(start: int, count: int, day: str) -> pd.DataFrame:
        chosen = latest.iloc[start : start + count]
        return pd.DataFrame(
            {
                "inspection_id": [f"many-{start + n}" for n in range(count)],
                "establishment_id": chosen["establishment_id"].to_numpy(),
                "date": pd.Timestamp(day),
                "result": ["Fail" if n % 3 == 0 else "Pass" for n in range(count)],
                "violations": "3. POTENTIALLY HAZARDOUS FOOD MEETS TEMPERATURE REQUIREMENT - Comments: x",
            }
        )

    first = with_recorded_outcomes(chicago, recorded(0, 40, "2014-08-25"))
    queries = _roster_queries(first, "2014-09-01")
    pd.testing.assert_frame_equal(_features(queries, first), _with_trees_only(queries, first, monkeypatch))
    assert neighbourhood._indexes[base_key][1] is base
    added = neighbourhood._indexes[("nearby-added", *base_key[1:])]
    assert added[0] is base and len(added[2] or ()) == 40

    # A few more: counted directly beside both indexes; many more: the added index built again.
    for count, rebuilt in ((45, False), (80, True)):
        more = with_recorded_outcomes(first, recorded(40, count - 40, "2014-08-28"))
        queries = _roster_queries(more, "2014-09-01")
        pd.testing.assert_frame_equal(_features(queries, more), _with_trees_only(queries, more, monkeypatch))
        assert neighbourhood._indexes[base_key][1] is base
        now = neighbourhood._indexes[("nearby-added", *base_key[1:])]
        assert (now is not added) == rebuilt and len(now[2] or ()) == (count if rebuilt else 40)
