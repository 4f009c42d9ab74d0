"""The synthetic cohort: reproducible from its seed, calibrated to its stated base rate and directions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from training.lead.cohort import SyntheticCohort, generate_cohort, solve_intercept
from training.lead.config import LeadConfig, SyntheticSpec
from training.lead.features import FEATURES
from training.lead.reference import Reference


@pytest.fixture(scope="module")
def spec(lead_config: LeadConfig) -> SyntheticSpec:
    assert lead_config.synthetic is not None
    return replace(lead_config.synthetic, birth_years=(2010, 2011), children_per_year=3000)


@pytest.fixture(scope="module")
def cohort(spec: SyntheticSpec, reference: Reference) -> SyntheticCohort:
    return generate_cohort(spec, reference)


def test_same_seed_same_cohort_other_seed_other_cohort(
    spec: SyntheticSpec, reference: Reference, cohort: SyntheticCohort
) -> None:
    again = generate_cohort(spec, reference)
    pd.testing.assert_frame_equal(again.tests, cohort.tests)
    pd.testing.assert_frame_equal(again.children, cohort.children)
    other = generate_cohort(replace(spec, seed=spec.seed + 1), reference)
    assert not other.tests["result_ug_dl"].equals(cohort.tests["result_ug_dl"])


def test_output_has_the_real_record_shape(lead_config: LeadConfig, cohort: SyntheticCohort) -> None:
    assert set(lead_config.outcome_columns.values()) == set(cohort.tests.columns)
    tests = cohort.tests
    age = pd.to_datetime(tests["test_date"]) - pd.to_datetime(tests["birth_date"])
    assert (age >= pd.Timedelta(days=0)).all() and (age < pd.Timedelta(days=1096)).all()
    assert tests["child_id"].nunique() == len(cohort.children)  # every child is tested at least once
    only_address = tests["latitude"].isna()
    assert 0 < only_address.mean() < 0.2 and tests.loc[only_address, "address"].notna().all()


def test_mean_probability_is_the_stated_base_rate(spec: SyntheticSpec, cohort: SyntheticCohort) -> None:
    assert cohort.children["probability"].mean() == pytest.approx(spec.base_rate, abs=1e-9)
    assert cohort.children["elevated"].mean() == pytest.approx(spec.base_rate, abs=0.015)
    # Children with an elevated outcome have at least one test >= 5 ug/dL, the others none.
    high = cohort.tests.groupby("child_id")["result_ug_dl"].max() >= 5
    assert high.sum() == cohort.children["elevated"].sum()


def _driver_effects(children: pd.DataFrame, reference: Reference, target: np.ndarray) -> np.ndarray:
    place = reference.place_features(children["tract"], children["community_area"])
    drivers = place[["tract_housing_risk_index", "ca_low_income_share", "ca_renter_share"]]
    z = ((drivers - drivers.mean()) / drivers.std(ddof=0)).fillna(0).to_numpy()
    design = np.column_stack((np.ones(len(z)), z))
    effects: np.ndarray = np.linalg.lstsq(design, target, rcond=None)[0][1:]
    return effects


def test_older_housing_is_the_strongest_driver_then_poverty_then_renting(
    spec: SyntheticSpec, reference: Reference
) -> None:
    """Without a real area series: logit p is linear in the drivers plus an independent home effect,
    so least squares recovers the configured effects per standard deviation."""
    children = generate_cohort(spec, replace(reference, area_outcomes=None)).children
    housing, poverty, renter = _driver_effects(children, reference, logit(children["probability"].to_numpy()))
    assert housing > poverty > renter > 0
    assert housing == pytest.approx(spec.effects["housing_risk"], abs=0.1)


def test_with_a_real_area_series_the_area_offset_carries_the_area_level(
    spec: SyntheticSpec, reference: Reference, cohort: SyntheticCohort
) -> None:
    """With [area_outcomes], each area-year's intercept follows the real series, so the area-level
    part of the drivers is the real pattern's; beyond that intercept, the drivers act as configured
    (housing age varies children within an area)."""
    children = cohort.children
    beyond = logit(children["probability"].to_numpy()) - children["area_offset"].to_numpy()
    housing, poverty, renter = _driver_effects(children, reference, beyond)
    assert housing == pytest.approx(spec.effects["housing_risk"], abs=0.1)
    assert housing > poverty > renter > 0
    # The offsets differ between areas far more than within an area (one per area and birth year).
    per_area_year = children.groupby([children["community_area"], children["birth_date"].dt.year])
    assert per_area_year["area_offset"].nunique().max() == 1
    assert children["area_offset"].std() > 0.3


def test_homes_follow_housing_units(reference: Reference, cohort: SyntheticCohort) -> None:
    children_per_area = cohort.children["community_area"].value_counts()
    units = reference.tracts["tract_housing_units"].reindex(reference.geo.tract_ids)
    units_per_area = units.groupby(reference.geo.tract_area).sum()
    joined = pd.concat([children_per_area, units_per_area], axis=1, join="inner")
    assert joined.corr().iloc[0, 1] > 0.9


def test_the_audit_attribute_is_never_a_feature(cohort: SyntheticCohort) -> None:
    assert set(cohort.children["race_ethnicity"]) <= {
        "Black",
        "Hispanic or Latino",
        "White",
        "Asian",
        "Other",
    }
    assert not any(word in name for name in FEATURES for word in ("race", "ethnic", "black", "white", "hisp"))


def test_intercept_solver_hits_the_target() -> None:
    linear = np.random.default_rng(0).normal(0, 1, 10_000)
    from scipy.special import expit

    assert expit(solve_intercept(linear, 0.045) + linear).mean() == pytest.approx(0.045, abs=1e-9)
