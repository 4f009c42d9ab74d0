"""Lead-risk features for a child at an as-of date: age, the home's place, earlier tests nearby, and
the home area's real outcome history.

Place features (housing age by tract, demographics by community area) are static tables. Test-history
features count only tests dated strictly before each query's as-of date, and area-outcome features read
only years published before it, so later data can never change an earlier score (see
tests/training/lead_risk/test_lead_features.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from training.lead.area_outcomes import (
    AREA_OUTCOME_CONTEXT,
    AREA_OUTCOME_FEATURES,
    MODELLED_AREA_OUTCOME_FEATURES,
)
from training.lead.reference import AREA_FEATURES, TRACT_FEATURES, Reference
from training.points import to_day, to_xyz

QUERY_COLUMNS = ("birth_date", "as_of", "latitude", "longitude", "tract", "community_area")
TEST_COLUMNS = ("test_date", "result", "latitude", "longitude")
# Two geocodes of one address agree to well under this; two neighbouring houses do not.
SAME_ADDRESS_KM = 0.005
HISTORY_FEATURES = (
    "prior_tests_address",
    "prior_elevated_address",
    "prior_elevated_share_address",
    "prior_tests_block",
    "prior_elevated_block",
    "prior_elevated_share_block",
)
CHILD_AND_PLACE_FEATURES = ("age_days", *TRACT_FEATURES, *AREA_FEATURES, *HISTORY_FEATURES)
# What models learn from; FEATURES adds what only the answer text shows or earlier bundles read: the
# area's published rate and its year, and its standard error (see training/lead/area_outcomes.py).
MODEL_FEATURES = (*CHILD_AND_PLACE_FEATURES, *MODELLED_AREA_OUTCOME_FEATURES)
FEATURES = (*CHILD_AND_PLACE_FEATURES, *AREA_OUTCOME_FEATURES, *AREA_OUTCOME_CONTEXT)
BASELINE_FEATURE = "tract_housing_risk_index"

FEATURE_DESCRIPTIONS = {
    "age_days": "child's age in days on the scoring date",
    "tract_housing_risk_index": "Washington State DOH housing-age lead-risk index of the home's census tract "
    "(0.68 x % pre-1940 + 0.43 x % 1940-59 + 0.08 x % 1960-79 + 0.03 x % 1980-99 units; ACS 2010-14)",
    "tract_pct_pre1940": "share of the tract's housing units built before 1940 (ACS 2010-14 B25034)",
    "tract_pct_1940_1959": "share of the tract's housing units built 1940-1959",
    "tract_pct_1960_1979": "share of the tract's housing units built 1960-1979",
    "tract_pct_1980_1999": "share of the tract's housing units built 1980-1999",
    "tract_housing_units": "housing units in the tract",
    "ca_median_income": "community area's median household income (ACS 2015-19, CMAP)",
    "ca_low_income_share": "community area's share of households with income under $25,000",
    "ca_renter_share": "community area's share of occupied units that are rented",
    "ca_vacancy_share": "community area's share of housing units that are vacant",
    "ca_pct_pre1940": "community area's share of housing units built before 1940",
    "ca_no_high_school_share": "community area's share of adults 25+ without a high-school diploma",
    "prior_tests_address": "blood tests recorded at the home's address before the scoring date",
    "prior_elevated_address": "of those, tests at or above the threshold",
    "prior_elevated_share_address": "share of earlier tests at the address at or above the threshold "
    "(missing when there were none)",
    "prior_tests_block": "blood tests recorded within the block radius of the home before the scoring date",
    "prior_elevated_block": "of those, tests at or above the threshold",
    "prior_elevated_share_block": "share of earlier tests within the block radius at or above the threshold "
    "(missing when there were none)",
    "area_outcome_log_ratio": "log of the home area's real lead-poisoning rate relative to the city's, in "
    "the latest year published before the scoring date (empirical-Bayes smoothed towards what the area's "
    "profile predicts; [area_outcomes])",
    "area_outcome_log_ratio_mean": "the same over the last published years pooled ([area_outcomes] "
    "mean_years), shrunk towards the city's level",
    "area_outcome_trend": "trend of that log ratio per year over the last published years ([area_outcomes] "
    "trend_years)",
    "area_outcome_se_ratio": "standard error of the area's rate in the latest published year, relative to "
    "the city's rate",
    "area_outcome_year": "the latest year of real area rates published before the scoring date",
    "area_outcome_rate": "the home area's real lead-poisoning rate in that year (% of tested children "
    "aged 1-5, as published)",
}


def history_features(
    queries: pd.DataFrame, tests: pd.DataFrame, threshold: float, block_radius_m: float
) -> pd.DataFrame:
    """Counts of earlier tests (and elevated ones) at the query's address and within the block radius."""
    out = pd.DataFrame(0.0, index=queries.index, columns=list(HISTORY_FEATURES))
    placed = queries["latitude"].notna() & queries["longitude"].notna()
    if tests.empty or not placed.any():
        out.loc[~placed] = np.nan
        return out
    query_xyz = to_xyz(queries.loc[placed, "latitude"], queries.loc[placed, "longitude"])
    test_xyz = to_xyz(tests["latitude"], tests["longitude"])
    pairs = cKDTree(query_xyz).sparse_distance_matrix(
        cKDTree(test_xyz), block_radius_m / 1000.0, output_type="ndarray"
    )
    query_day = to_day(queries.loc[placed, "as_of"])[pairs["i"]]
    test_day = to_day(tests["test_date"])[pairs["j"]]
    before = test_day < query_day
    elevated = tests["result"].to_numpy(dtype="float64")[pairs["j"]] >= threshold
    at_address = pairs["v"] <= SAME_ADDRESS_KM
    n = int(placed.sum())
    counts = {
        "prior_tests_address": before & at_address,
        "prior_elevated_address": before & at_address & elevated,
        "prior_tests_block": before,
        "prior_elevated_block": before & elevated,
    }
    for name, mask in counts.items():
        out.loc[placed, name] = np.bincount(pairs["i"][mask], minlength=n).astype("float64")
    for scope in ("address", "block"):
        tested = out[f"prior_tests_{scope}"]
        out[f"prior_elevated_share_{scope}"] = out[f"prior_elevated_{scope}"] / tested.where(tested > 0)
    out.loc[~placed] = np.nan
    return out


def area_outcome_features(queries: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """The home area's real outcome history as of each query (all missing when no series is configured)."""
    outcomes = reference.area_outcomes
    if outcomes is None:
        names = [*AREA_OUTCOME_FEATURES, *AREA_OUTCOME_CONTEXT]
        return pd.DataFrame(np.nan, index=queries.index, columns=names)
    place = queries["community_area"] if outcomes.spec.area_level == "community_area" else queries["tract"]
    return outcomes.features(place, queries["as_of"])


def build_features(
    queries: pd.DataFrame, tests: pd.DataFrame, reference: Reference, threshold: float, block_radius_m: float
) -> pd.DataFrame:
    """FEATURES for each query (child at an as-of date), same index, all float (NaN = unknown).

    `queries` needs QUERY_COLUMNS; `tests` needs TEST_COLUMNS (any dates: later ones are ignored).
    """
    missing = [c for c in QUERY_COLUMNS if c not in queries.columns]
    missing += [c for c in TEST_COLUMNS if c not in tests.columns]
    if missing:
        raise ValueError(f"missing columns {missing}")
    age = (queries["as_of"] - queries["birth_date"]).dt.days.astype("float64")
    parts = [
        age.rename("age_days"),
        reference.place_features(queries["tract"], queries["community_area"]),
        history_features(queries, tests, threshold, block_radius_m),
        area_outcome_features(queries, reference),
    ]
    return pd.concat(parts, axis=1)[list(FEATURES)].astype("float64")
