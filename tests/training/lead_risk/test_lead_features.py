"""Lead features are point-in-time: tests on or after the as-of date never change a child's features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.lead.features import FEATURES, build_features
from training.lead.reference import Reference

HOME = (41.8000, -87.6700)
METRES_PER_DEGREE_LAT = 110_574.0


def _north(metres: float) -> tuple[float, float]:
    return HOME[0] + metres / METRES_PER_DEGREE_LAT, HOME[1]


def _tests(rows: list[tuple[str, float, tuple[float, float]]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "test_date": pd.to_datetime([r[0] for r in rows]),
            "result": [r[1] for r in rows],
            "latitude": [r[2][0] for r in rows],
            "longitude": [r[2][1] for r in rows],
        }
    )


@pytest.fixture(scope="module")
def query(reference: Reference) -> pd.DataFrame:
    place = reference.geo.locate_many([HOME[0]], [HOME[1]])
    return pd.DataFrame(
        {
            "birth_date": pd.to_datetime(["2011-06-01"]),
            "as_of": pd.to_datetime(["2012-06-01"]),
            "latitude": [HOME[0]],
            "longitude": [HOME[1]],
            "tract": place["tract"],
            "community_area": place["community_area"],
        }
    )


PAST = [
    ("2010-03-01", 7.0, HOME),  # same address, elevated
    ("2011-03-01", 2.0, HOME),  # same address
    ("2012-05-31", 6.0, _north(100)),  # same block, elevated, the day before
    ("2012-01-01", 9.0, _north(400)),  # beyond the block radius
]
FUTURE = [
    ("2012-06-01", 12.0, HOME),  # on the as-of date: not yet known
    ("2013-01-01", 8.0, _north(50)),
]


def test_counts_at_the_address_and_block_before_the_as_of_date(
    reference: Reference, query: pd.DataFrame
) -> None:
    row = build_features(query, _tests(PAST + FUTURE), reference, 5.0, 150).iloc[0]
    assert list(row.index) == list(FEATURES)
    assert row["age_days"] == 366
    assert (row["prior_tests_address"], row["prior_elevated_address"]) == (2, 1)
    assert row["prior_elevated_share_address"] == 0.5
    assert (row["prior_tests_block"], row["prior_elevated_block"]) == (3, 2)
    assert row["prior_elevated_share_block"] == pytest.approx(2 / 3)


def test_changing_or_adding_future_tests_changes_nothing(reference: Reference, query: pd.DataFrame) -> None:
    before = build_features(query, _tests(PAST + FUTURE), reference, 5.0, 150)
    shifted = [(date, 1.0 if result >= 5 else 20.0, place) for date, result, place in FUTURE]
    more = [("2014-01-01", 30.0, HOME)] * 5
    after = build_features(query, _tests(PAST + shifted + more), reference, 5.0, 150)
    pd.testing.assert_frame_equal(before, after)
    alone = build_features(query, _tests(PAST), reference, 5.0, 150)
    pd.testing.assert_frame_equal(before, alone)


def test_no_history_gives_zero_counts_and_missing_shares(reference: Reference, query: pd.DataFrame) -> None:
    row = build_features(query, _tests(FUTURE), reference, 5.0, 150).iloc[0]
    assert row["prior_tests_block"] == 0 and np.isnan(row["prior_elevated_share_block"])


def test_housing_index_matches_the_published_column(reference: Reference, lead_config) -> None:  # noqa: ANN001
    published = pd.read_csv(lead_config.housing_age, dtype={"geoid": "string"}).set_index("geoid")
    ours = reference.tracts["tract_housing_risk_index"]
    both = pd.concat([ours, published["wa_doh_housing_risk"]], axis=1).dropna()
    assert len(both) > 1300
    np.testing.assert_allclose(both.iloc[:, 0], both.iloc[:, 1], rtol=1e-9)


def test_place_features_follow_the_home(reference: Reference, query: pd.DataFrame) -> None:
    row = build_features(query, _tests(PAST), reference, 5.0, 150).iloc[0]
    tract = query["tract"].iloc[0]
    assert row["tract_housing_risk_index"] == reference.tracts.loc[tract, "tract_housing_risk_index"]
    area = int(query["community_area"].iloc[0])
    assert row["ca_renter_share"] == reference.areas.loc[area, "ca_renter_share"]


def test_unpublished_area_outcomes_change_nothing(reference: Reference, query: pd.DataFrame) -> None:
    """The area-outcome features read only years published before the as-of date: rewriting every
    later year (here 2012 on, for an as-of date in 2012 and a one-year lag) changes nothing, while a
    query a year later does see the rewrite (proof the test can fail)."""
    import dataclasses

    from training.lead.area_outcomes import AREA_OUTCOME_CONTEXT, AREA_OUTCOME_FEATURES, feature_table

    outcomes = reference.area_outcomes
    assert outcomes is not None
    series = outcomes.series
    later = [year for year in series.rate.columns if year >= 2012]
    rate = series.rate.copy()
    rate[later] = rate[later].to_numpy()[::-1] * 3  # other areas' rates, tripled
    rewritten_series = dataclasses.replace(series, rate=rate)
    smoothed = outcomes.smoothed.copy()
    smoothed[later] = smoothed[later].to_numpy()[::-1] * 3
    table = feature_table(outcomes.spec, rewritten_series, smoothed, outcomes.city, outcomes.tested)
    rewritten = dataclasses.replace(
        reference,
        area_outcomes=dataclasses.replace(outcomes, series=rewritten_series, smoothed=smoothed, table=table),
    )
    names = [*AREA_OUTCOME_FEATURES, *AREA_OUTCOME_CONTEXT]
    before = build_features(query, _tests(PAST), reference, 5.0, 150)
    after = build_features(query, _tests(PAST), rewritten, 5.0, 150)
    assert before[names].notna().all(axis=None)
    pd.testing.assert_frame_equal(before, after)
    later_query = query.assign(as_of=query["as_of"] + pd.Timedelta(days=366))
    changed = build_features(later_query, _tests(PAST), rewritten, 5.0, 150)[names]
    unchanged = build_features(later_query, _tests(PAST), reference, 5.0, 150)[names]
    assert not changed.equals(unchanged)
