"""A synthetic birth cohort with blood-lead tests, because real test records are private.

What is real: the places. Homes are real Chicago street addresses, drawn in proportion to each census
tract's housing units (ACS 2010-2014); each home's tract and community area come from the real
boundaries, and its housing age and demographics from the real tables.

What is synthetic: the children, their birth dates, their tests and results, and the race/ethnicity
attribute used by the fairness audit. A child's chance of a test >= 5 ug/dL by age 3 is

    logit p = b0 + 0.60 z(tract housing-age index) + 0.35 z(area low-income share)
                 + 0.25 z(area renter share) + u(home),   u(home) ~ Normal(0, 0.9)

(coefficients per standard deviation across children, set in lead.toml), following the directions and
rough order in Potash et al. (KDD 2015) and later Chicago work: older housing strongest, poverty and
renting next; sized so the best model's validation AUC lands near the 0.69 reported in 2020. b0
is solved so the cohort's mean p equals the configured base rate (4.5%). u(home) is the building's own
condition, shared by every child who lives there, so earlier elevated tests at an address carry signal,
as they did in Chicago. Race/ethnicity is drawn from the community area's population shares and has
no effect on the outcome beyond the place it is drawn in. None of this is real-world accuracy.

With real area outcomes configured ([area_outcomes]), the place structure is real too: each birth
year's area effect is fitted so that the areas' simulated prevalence, relative to the city's, equals
the real series' relative rates of the year the cohort turns two (birth year + AREA_YEAR_OFFSET, when
most elevated tests happen), pooled with the years either side (`AreaOutcomes.relative`), using only
years up to `known_until`; later birth years carry the last known year's pattern forward. The area
effect then takes over the area-level part of every driver, so poverty and renting act through the
real pattern; housing age and the home effect still vary children within an area. The cohort's base
rate stays the configured one in every year: the series' threshold changed over the years, so only
its relative pattern is used.

Tests: a screening test near 12 months (80% of children), 24 months (55%) and 36 months (25%), at least
one per child. An affected child's tests from an onset age (about 20 months, varying) on are >= 5; if
no scheduled test follows the onset, a clinic test within two months of it does. The output has the
shape a city's own records would have (one row per test; see lead.toml [outcomes.columns]).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import spearmanr

from training.lead.area_outcomes import AreaOutcomes
from training.lead.config import SyntheticSpec
from training.lead.reference import Reference

# (probability, mean age in days, sd, earliest, latest) of each scheduled screening test.
SCREENING = ((0.80, 365, 40, 240, 540), (0.55, 730, 50, 600, 900), (0.25, 1020, 40, 920, 1090))
ONSET_DAYS = (600.0, 180.0, 200, 1050)  # mean, sd, earliest, latest age at which tests turn >= 5
DRIVERS = {
    "housing_risk": "tract_housing_risk_index",
    "low_income": "ca_low_income_share",
    "renter": "ca_renter_share",
}
AREA_YEAR_OFFSET = 2  # a birth cohort's area pattern is the real series' of the year it turns two
BISECTION_STEPS = 80


@dataclass(frozen=True)
class SyntheticCohort:
    children: pd.DataFrame  # one row per child, with the latent probability and outcome
    tests: pd.DataFrame  # one row per test, in the real-data shape
    calibration: list[dict[str, Any]] = field(default_factory=list)  # simulated vs real, by year


def solve_intercept(linear: np.ndarray, base_rate: float) -> float:
    """b0 such that mean(expit(b0 + linear)) equals `base_rate` (bisection; the mean is monotone in b0)."""
    low, high = -20.0, 20.0
    for _ in range(100):
        middle = (low + high) / 2
        if expit(middle + linear).mean() < base_rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _group_offsets(linear: np.ndarray, codes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per group g, o[g] with mean(expit(o[g] + linear)) over the group equal to targets[g] (bisection,
    all groups at once; the mean is monotone in o)."""
    counts = np.bincount(codes, minlength=len(targets))
    low, high = np.full(len(targets), -30.0), np.full(len(targets), 30.0)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        sums = np.bincount(codes, expit(middle[codes] + linear), minlength=len(targets))
        below = sums / np.maximum(counts, 1) < targets
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    offsets: np.ndarray = (low + high) / 2
    return offsets


def pattern_year(birth_year: int, outcomes: AreaOutcomes, known_until: int | None) -> int | None:
    """The real year whose area pattern a birth cohort follows: birth + AREA_YEAR_OFFSET, no later
    than `known_until` or the series' end; None before the series starts."""
    last = outcomes.spec.years[1] if known_until is None else min(known_until, outcomes.spec.years[1])
    year = min(birth_year + AREA_YEAR_OFFSET, last)
    return year if year >= outcomes.spec.years[0] else None


def area_offsets(
    linear: np.ndarray,
    areas: pd.Series,
    birth_years: np.ndarray,
    outcomes: AreaOutcomes,
    base_rate: float,
    known_until: int | None,
) -> np.ndarray:
    """Each child's intercept: per birth year and area, so that the area's mean probability relative to
    the year's is the real relative rate of the pattern year, and the year's mean is `base_rate`."""
    offsets = np.empty(len(linear))
    for birth_year in np.unique(birth_years):
        members = np.flatnonzero(birth_years == birth_year)
        year = pattern_year(int(birth_year), outcomes, known_until)
        if year is None:
            offsets[members] = solve_intercept(linear[members], base_rate)
            continue
        relative = outcomes.relative(year, known_until)
        keys = areas.iloc[members]
        ratio = relative.reindex(keys.to_numpy()).fillna(1.0).to_numpy()  # an unknown area: the city's
        targets_by_child = np.minimum(base_rate * ratio / ratio.mean(), 0.95)
        codes, _ = pd.factorize(keys.fillna(-1))
        targets = np.bincount(codes, targets_by_child) / np.bincount(codes)
        offsets[members] = _group_offsets(linear[members], codes, targets)[codes]
    return offsets


def calibration_report(
    children: pd.DataFrame, outcomes: AreaOutcomes, known_until: int | None
) -> list[dict[str, Any]]:
    """Simulated vs real area rates by pattern year: rank correlation (Spearman) of the generator's
    expected and realised area prevalence with the real published rates, and the median relative error
    of the simulated relative prevalence against the real (smoothed) relative rate it was fitted to."""
    rows = []
    level = outcomes.spec.area_level
    birth_year = children["birth_date"].dt.year.to_numpy()
    for year_of_birth in np.unique(birth_year):
        year = pattern_year(int(year_of_birth), outcomes, known_until)
        if year is None:
            continue
        cohort = children[(birth_year == year_of_birth) & children[level].notna()]
        by_area = cohort.groupby(level)[["probability", "elevated"]].mean()
        by_area = by_area / cohort[["probability", "elevated"]].astype("float64").mean()
        published = (outcomes.series.rate[year] / outcomes.city[year]).reindex(by_area.index)
        # Relative to the cohort's own mean, as the fit normalises it (the city's rate weighs areas
        # by children tested, the cohort by children born).
        fitted_to = outcomes.relative(year, known_until).reindex(by_area.index)
        fitted_to = fitted_to / np.average(fitted_to, weights=cohort[level].value_counts()[by_area.index])
        rows.append(
            {
                "birth_year": int(year_of_birth),
                "pattern_year": year,
                "carried_forward": year < int(year_of_birth) + AREA_YEAR_OFFSET,
                "areas": len(by_area),
                "spearman_expected": float(spearmanr(by_area["probability"], published).statistic),
                "spearman_realised": float(spearmanr(by_area["elevated"], published).statistic),
                # Rounded: the expected error is 0 up to floating-point noise.
                "median_relative_error_expected": round(
                    float(((by_area["probability"] - fitted_to).abs() / fitted_to).median()), 4
                ),
                "median_relative_error_realised": round(
                    float(((by_area["elevated"] - fitted_to).abs() / fitted_to).median()), 4
                ),
            }
        )
    return rows


def _homes(reference: Reference, tracts: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """A real address in each child's tract (uniformly among the known ones), else a random point."""
    table = pd.read_csv(reference.config.addresses, usecols=["address", "latitude", "longitude"])
    table["tract"] = reference.geo.locate_many(table["latitude"], table["longitude"])["tract"].to_numpy()
    by_tract = {
        tract: group.index.to_numpy() for tract, group in table.dropna(subset=["tract"]).groupby("tract")
    }
    latitude = np.empty(len(tracts))
    longitude = np.empty(len(tracts))
    address = np.full(len(tracts), None, dtype=object)
    for tract in np.unique(tracts):
        children = np.flatnonzero(tracts == tract)
        known = by_tract.get(tract)
        if known is None:
            latitude[children], longitude[children] = reference.geo.sample_points(tract, len(children), rng)
            continue
        chosen = known[rng.integers(0, len(known), len(children))]
        latitude[children] = table.loc[chosen, "latitude"].to_numpy()
        longitude[children] = table.loc[chosen, "longitude"].to_numpy()
        address[children] = table.loc[chosen, "address"].to_numpy()
    return pd.DataFrame({"latitude": latitude, "longitude": longitude, "address": address})


def _groups(
    reference: Reference, areas: np.ndarray, spec: SyntheticSpec, rng: np.random.Generator
) -> np.ndarray:
    names = list(spec.group_columns)
    shares = reference.profiles[list(spec.group_columns.values())].astype("float64")
    shares = shares.div(shares.sum(axis=1), axis=0).reindex(areas).fillna(1 / len(names)).to_numpy()
    # Inverse-CDF draw per child from its own area's shares.
    picks = (rng.random(len(areas))[:, None] > np.cumsum(shares, axis=1)).sum(axis=1)
    chosen: np.ndarray = np.asarray(names, dtype=object)[np.minimum(picks, len(names) - 1)]
    return chosen


def _tests(children: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Test ages and results for every child (see the module docstring)."""
    n = len(children)
    elevated = children["elevated"].to_numpy()
    mean, sd, first, last = ONSET_DAYS
    # Whole days throughout, so rounding can never put a child's clinic test before its onset.
    onset = np.where(elevated, np.round(np.clip(rng.normal(mean, sd, n), first, last)), np.inf)
    ages = []
    for probability, centre, spread, low, high in SCREENING:
        taken = rng.random(n) < probability
        ages.append(np.where(taken, np.round(np.clip(rng.normal(centre, spread, n), low, high)), np.nan))
    scheduled = np.column_stack(ages)
    untested = np.isnan(scheduled).all(axis=1)
    scheduled[untested, 0] = np.round(np.clip(rng.normal(400, 90, untested.sum()), 240, 900))
    # Affected children whose onset no scheduled test follows get a clinic test soon after it.
    missed = elevated & ~(scheduled >= onset[:, None]).any(axis=1)
    clinic = np.where(missed, np.minimum(onset + rng.integers(0, 61, n), 1090), np.nan)
    ages_all = np.column_stack((scheduled, clinic))
    child, slot = np.nonzero(~np.isnan(ages_all))
    age = ages_all[child, slot].astype("int64")
    result = np.where(
        age >= onset[child],
        5.0 + rng.lognormal(np.log(2.5), 0.7, len(age)),
        np.minimum(rng.lognormal(np.log(1.8), 0.5, len(age)), 4.9),
    )
    birth = children["birth_date"].to_numpy()[child]
    return pd.DataFrame(
        {
            "child": child,
            "test_date": birth + age.astype("timedelta64[D]"),
            "result_ug_dl": np.round(result, 1),
        }
    )


def generate_cohort(
    spec: SyntheticSpec, reference: Reference, known_until: int | None = None
) -> SyntheticCohort:
    """The seeded synthetic cohort: the same spec, reference files and `known_until` (the last year of
    real area outcomes it may follow) always give the same frames."""
    rng = np.random.default_rng(spec.seed)
    years = np.arange(spec.birth_years[0], spec.birth_years[1] + 1)
    starts = pd.to_datetime([f"{y}-01-01" for y in years]).to_numpy().astype("datetime64[D]")
    lengths = np.array([366 if calendar.isleap(int(y)) else 365 for y in years])
    year_index = np.repeat(np.arange(len(years)), spec.children_per_year)
    birth = starts[year_index] + rng.integers(0, lengths[year_index]).astype("timedelta64[D]")
    birth.sort()

    units = reference.tracts["tract_housing_units"]
    units = units[units.index.isin(reference.geo.tract_ids) & (units > 0)]
    tracts = rng.choice(
        units.index.to_numpy(dtype=object), size=len(birth), p=(units / units.sum()).to_numpy()
    )
    homes = _homes(reference, tracts, rng)
    place = reference.geo.locate_many(homes["latitude"], homes["longitude"])
    features = reference.place_features(place["tract"], place["community_area"])

    linear = np.zeros(len(birth))
    for name, column in DRIVERS.items():
        values = features[column].to_numpy()
        z = (values - np.nanmean(values)) / np.nanstd(values)
        linear += spec.effects[name] * np.nan_to_num(z)
    home_key = homes["address"].fillna(
        homes["latitude"].round(6).astype(str) + homes["longitude"].round(6).astype(str)
    )
    home_codes, _ = pd.factorize(home_key)
    linear += rng.normal(0.0, spec.address_effect_sd, home_codes.max() + 1)[home_codes]
    outcomes = reference.area_outcomes
    if outcomes is None:
        offset = np.full(len(linear), solve_intercept(linear, spec.base_rate))
    else:
        level = "community_area" if outcomes.spec.area_level == "community_area" else "tract"
        areas = place[level].reset_index(drop=True)
        birth_years = birth.astype("datetime64[Y]").astype("int64") + 1970
        offset = area_offsets(linear, areas, birth_years, outcomes, spec.base_rate, known_until)
    probability = expit(offset + linear)

    children = pd.DataFrame(
        {
            "child_id": [f"C{i:06d}" for i in range(1, len(birth) + 1)],
            "birth_date": birth.astype("datetime64[ns]"),
            "tract": place["tract"].to_numpy(),
            "community_area": place["community_area"].to_numpy(),
            **{column: homes[column].to_numpy() for column in ("latitude", "longitude", "address")},
            "race_ethnicity": _groups(
                reference, place["community_area"].to_numpy(dtype="float64"), spec, rng
            ),
            "area_offset": offset,
            "probability": probability,
            "elevated": rng.random(len(birth)) < probability,
        }
    )
    tests = _tests(children, rng)
    tests_child = tests.pop("child").to_numpy()
    own = children.iloc[tests_child].reset_index(drop=True)
    # Some records give the home only as an address, as a city's own extract may.
    address_only = rng.random(len(children)) < spec.address_only_share
    only = address_only[tests_child] & own["address"].notna().to_numpy()
    table = pd.DataFrame(
        {
            "child_id": own["child_id"],
            "birth_date": own["birth_date"].dt.strftime("%Y-%m-%d"),
            "test_date": pd.Series(tests["test_date"].to_numpy()).dt.strftime("%Y-%m-%d"),
            "result_ug_dl": tests["result_ug_dl"].to_numpy(),
            "latitude": own["latitude"].where(~only).round(6),
            "longitude": own["longitude"].where(~only).round(6),
            "address": own["address"],
            "race_ethnicity": own["race_ethnicity"],
        }
    )
    table = table.sort_values(["test_date", "child_id"], kind="stable").reset_index(drop=True)
    calibration = [] if outcomes is None else calibration_report(children, outcomes, known_until)
    return SyntheticCohort(children=children, tests=table, calibration=calibration)
