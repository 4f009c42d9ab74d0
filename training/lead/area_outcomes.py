"""Real outcomes by area and year (e.g. CDPH's lead-poisoning rate per community area): read, checked,
smoothed, and turned into point-in-time features.

A city's series is one row per area and one rate column per year, each with its standard error
(`[area_outcomes]` in the lead config). Small areas' rates are noisy, so each year's rates are shrunk
by empirical Bayes towards a prior: for a series by community area, what the area's census profile
predicts (a regression of that year's rates on the community-area features, weighted by children
tested: Fay and Herriot's small-area estimator, 1979); otherwise the year's city rate (Marshall's
global moment estimator, 1991, which is the same with no covariate). Shrinking towards the city rate
pulled a small area with a high rate down even where its whole neighbourhood was as high, and ranked
areas' later real rates worse than the raw rate in 8 of 10 backtest years (LEAD_README.md). An
area's weight on its own rate grows with the number of children tested there, which the rate and its
standard error imply (n = p(1 - p) / se^2). The series measures the share of tested children classed
as poisoned under the agency's threshold of the time, not the model's label, so features are relative
to the city's rate of the same year, never the rate itself. The area's recent level pools its last
`mean_years` years before shrinking (judged on years before the backtest's, 2000-2009, pooling three
years ranked areas' later rates better than the latest year alone, raw or smoothed). The synthetic
cohort's area pattern (`AreaOutcomes.relative`) is the real rates pooled over time, not smoothed
towards the census profile: a cohort following census-smoothed rates taught the model that profile's
bias.

Point in time: a year's rates are known `publication_lag_years` after the year (1 January), so a child
scored on date D sees years up to D.year - lag; before the series' first such year the features are
missing, not invented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from training.config import ConfigError

AREA_OUTCOME_FEATURES = (
    "area_outcome_log_ratio",
    "area_outcome_log_ratio_mean",
    "area_outcome_trend",
    "area_outcome_se_ratio",
)
# What models learn from: all but the standard error relative to the city's rate, whose scale grows as
# the city's rate falls (fewer cases), so that a model fitted on earlier cohorts reads a later year's
# values as extreme. It still makes the smoothing (an area's weight on its own rate) and is computed
# for bundles trained with it. Models given it ranked areas' later real rates worse (LEAD_README.md).
MODELLED_AREA_OUTCOME_FEATURES = tuple(
    name for name in AREA_OUTCOME_FEATURES if name != "area_outcome_se_ratio"
)
# Computed with the features (so training and the service share one definition) but never given to a
# model: absolute rates fall over the years under changing thresholds, so only the answer text shows them.
AREA_OUTCOME_CONTEXT = ("area_outcome_year", "area_outcome_rate")
RATE_UNITS = {"percent": 100.0, "share": 1.0, "per_1000": 1000.0}
AREA_LEVELS = ("community_area", "tract")
# Earlier years whose implied number tested stands in for a year whose rate is 0 (no standard error).
TESTED_LOOKBACK_YEARS = 3
_Frame = TypeVar("_Frame", pd.DataFrame, pd.Series)


@dataclass(frozen=True)
class AreaOutcomesSpec:
    """`[area_outcomes]` of a lead config: where the series is and how to read it."""

    file: Path
    area_level: str  # "community_area" or "tract": which of the home's places the area key names
    area_column: str
    rate_column: str  # with "{year}", e.g. "LDPPH_{year}"
    standard_error_column: str  # with "{year}"
    years: tuple[int, int]
    skip_lines: tuple[int, ...]  # 1-based file lines that are not data (e.g. a second header of labels)
    rate_unit: str
    publication_lag_years: int
    mean_years: int
    trend_years: int
    impute: bool  # False: a missing area, a year gap or a bad rate is a config error
    # `civicrisk evaluate-areas --out` results that the model card shows, when the file exists.
    backtest_file: Path | None = None


@dataclass(frozen=True)
class Series:
    """Rates as shares, by area (rows) and year (columns); NaN where nothing is known."""

    rate: pd.DataFrame
    standard_error: pd.DataFrame
    imputed: dict[str, int] = field(default_factory=dict)


def _problem(spec: AreaOutcomesSpec, config_path: Path, problems: list[str]) -> ConfigError:
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return ConfigError(config_path, "area_outcomes", f"{spec.file.name}: {problems[0]}{more}")


def read_series(spec: AreaOutcomesSpec, config_path: Path, area_ids: list[object]) -> Series:
    """The file's rates and standard errors for `area_ids`, checked; problems raise one ConfigError,
    or, with `impute`, are filled (interpolated over the area's years; a missing area: unknown, so
    its smoothed rate is the city's) and counted."""
    skip = [line - 1 for line in spec.skip_lines]
    raw = pd.read_csv(spec.file, dtype="string", keep_default_na=False, skiprows=skip)
    if spec.area_column not in raw.columns:
        raise ConfigError(
            config_path, "area_outcomes.area_column", f"column {spec.area_column!r} not in {spec.file.name}"
        )
    keys = raw[spec.area_column].str.strip()
    if spec.area_level == "community_area":
        numbers = pd.to_numeric(keys, errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise _problem(spec, config_path, [f"area {keys.iloc[first]!r} is not a community-area number"])
        index: pd.Index = pd.Index(numbers.astype("int64"))
    else:
        index = pd.Index(keys.astype(str))
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise _problem(spec, config_path, [f"area {duplicated[0]} appears more than once"])

    years = list(range(spec.years[0], spec.years[1] + 1))
    problems: list[str] = []
    counts = {"missing areas": 0, "missing years": 0, "non-numeric or impossible rates": 0}
    scale = RATE_UNITS[spec.rate_unit]
    rate = pd.DataFrame(np.nan, index=index, columns=years)
    error = pd.DataFrame(np.nan, index=index, columns=years)
    for year in years:
        column = spec.rate_column.format(year=year)
        if column not in raw.columns:
            problems.append(f"year {year} missing (no column {column!r})")
            counts["missing years"] += 1
            continue
        values = pd.to_numeric(raw[column].str.strip(), errors="coerce") / scale
        bad = values.isna() | (values < 0) | (values > 1)
        for position in np.flatnonzero(bad.to_numpy()):
            problems.append(
                f"area {index[position]} year {year}: rate {raw[column].iloc[position]!r} is not a number "
                f"between 0 and {scale:g}"
            )
        counts["non-numeric or impossible rates"] += int(bad.sum())
        rate[year] = values.where(~bad).to_numpy()
        se_column = spec.standard_error_column.format(year=year)
        if se_column in raw.columns:
            error[year] = (pd.to_numeric(raw[se_column].str.strip(), errors="coerce") / scale).to_numpy()
    missing = [area for area in area_ids if area not in index]
    for area in missing:
        problems.append(f"area {area} has no row")
    counts["missing areas"] = len(missing)
    if problems and not spec.impute:
        raise _problem(spec, config_path, problems)
    wanted = pd.Index(area_ids)
    rate, error = rate.reindex(wanted), error.reindex(wanted)
    if problems:
        # Along each area's years; a missing area stays unknown (its smoothed rate is the city's).
        rate = rate.T.interpolate(limit_direction="both").T
    return Series(rate=rate, standard_error=error, imputed={k: v for k, v in counts.items() if v})


def _tested(series: Series) -> pd.DataFrame:
    """Children tested per area and year, as the rate and its standard error imply; for a rate of 0
    (no standard error) the median of the area's earlier years, else that year's median area."""
    p, se = series.rate, series.standard_error
    implied = (p * (1 - p) / se.pow(2)).where((p > 0) & (se > 0))
    earlier = implied.T.rolling(TESTED_LOOKBACK_YEARS, min_periods=1).median().shift(1).T
    tested = implied.fillna(earlier)
    return tested.fillna(implied.median(axis=0), axis=0).where(p.notna())


@dataclass(frozen=True)
class Smoothed:
    rates: pd.DataFrame  # shares, by area and year
    city: pd.Series  # the city's rate, by year
    tested: pd.DataFrame  # children tested, by area and year, as the rates and errors imply
    prior: pd.DataFrame  # what each area's rate is shrunk towards, by area and year


def smooth(series: Series, covariates: pd.DataFrame | None = None) -> Smoothed:
    """Empirical-Bayes rates by area and year. Each year, an area's rate p is shrunk towards its prior
    m (`regression_prior` of `covariates`, or the city's rate c) with weight A / (A + c / n) on p:
    c / n is p's sampling variance (Poisson, at the city's rate, as Marshall's), A the variance of the
    areas' rates around their priors that sampling does not explain (moment estimate, weighted by n).
    An area with no rate that year is unknown: the city's rate, not a prediction."""
    p, n = series.rate, _tested(series)
    city = (p * n).sum() / n.sum()
    prior = pd.DataFrame(
        np.broadcast_to(city.to_numpy(), p.shape), index=p.index, columns=p.columns, dtype="float64"
    )
    if covariates is not None:
        prior = regression_prior(p, n, city, covariates)
    spread = (n * (p - prior).pow(2)).sum() / n.sum()
    between = (spread - city / n.mean()).clip(lower=0)
    weight = (between / (between + city / n)).fillna(0.0)  # no children known: all the prior
    return Smoothed(prior + weight * (p.fillna(0) - prior), city, n, prior)


# A prior below this share of the city's rate is raised to it: a linear fit can go negative, and an
# area's expected rate is not 0.
PRIOR_FLOOR = 0.05


def regression_prior(
    rate: pd.DataFrame, tested: pd.DataFrame, city: pd.Series, covariates: pd.DataFrame
) -> pd.DataFrame:
    """Per year, the rates predicted from `covariates` (by area; standardized, with an intercept) by
    least squares weighted by children tested, fitted on that year's rates only; the city's rate for
    an area with no rate that year or an incomplete profile, or in a year with too few areas to fit."""
    design = covariates.reindex(rate.index).astype("float64")
    design = (design - design.mean()) / design.std().replace(0.0, 1.0)
    complete = design.notna().all(axis=1).to_numpy()
    matrix = np.column_stack([np.ones(len(design)), design.fillna(0.0).to_numpy()])
    prior = pd.DataFrame(index=rate.index, columns=rate.columns, dtype="float64")
    for year in rate.columns:
        p, n = rate[year].to_numpy(), tested[year].to_numpy()
        known = complete & ~np.isnan(p) & ~np.isnan(n) & (n > 0)
        if known.sum() <= 2 * matrix.shape[1]:
            prior[year] = city[year]
            continue
        root = np.sqrt(n[known])
        beta = np.linalg.lstsq(matrix[known] * root[:, np.newaxis], p[known] * root, rcond=None)[0]
        fitted = np.maximum(matrix @ beta, PRIOR_FLOOR * city[year])
        prior[year] = np.where(complete & ~np.isnan(p), fitted, city[year])
    return prior


@dataclass(frozen=True)
class AreaOutcomes:
    """Point-in-time area features, one row per (area, latest published year)."""

    spec: AreaOutcomesSpec
    series: Series
    smoothed: pd.DataFrame  # shares, by area and year
    city: pd.Series  # shares, by year
    tested: pd.DataFrame  # children tested, by area and year, as the rates and errors imply
    prior: pd.DataFrame  # what `smoothed` shrank each area's rate towards, by area and year
    table: pd.DataFrame  # AREA_OUTCOME_FEATURES + AREA_OUTCOME_CONTEXT by (area, year)
    rows: dict[tuple[object, int], list[float]]

    @property
    def names(self) -> tuple[str, ...]:
        return (*AREA_OUTCOME_FEATURES, *AREA_OUTCOME_CONTEXT)

    def published_year(self, as_of_year: int) -> int | None:
        """The latest year whose rates are known on any day of `as_of_year`, if any."""
        year = min(as_of_year - self.spec.publication_lag_years, self.spec.years[1])
        return year if year >= self.spec.years[0] else None

    def features(self, area: pd.Series, as_of: pd.Series) -> pd.DataFrame:
        """The features of each row's area at its as-of date (NaN before the series or off its areas)."""
        year = (as_of.dt.year - self.spec.publication_lag_years).clip(upper=self.spec.years[1])
        year = year.where(year >= self.spec.years[0])
        keys = pd.MultiIndex.from_arrays([_area_keys(area, self.spec.area_level), year.astype("float64")])
        found = self.table.reindex(keys)
        return found.set_axis(area.index).astype("float64")

    def row(self, area: object, as_of: date) -> list[float]:
        """The same, for one child (the service's path): a dictionary lookup. The list is shared:
        read it, never change it."""
        year = self.published_year(as_of.year)
        found = None if year is None else self.rows.get((area, year))
        return found if found is not None else [math.nan] * len(self.names)

    def relative(self, year: int, known_until: int | None = None) -> pd.Series:
        """Each area's rate relative to the city's around `year`, the cohort's target pattern: the years
        `year` - 1 .. `year` + 1 that are known by `known_until`, pooled (cases over the cases the
        city's rates would give) and shrunk towards the city's as `pooled_relative` does. Pooled over
        time, not shrunk towards the census profile: a cohort that follows the census-smoothed rates
        teaches the model the profile's bias, and models trained on one ranked areas' later real rates
        worse (LEAD_README.md)."""
        last = min(self.spec.years[1], year + 1 if known_until is None else min(known_until, year + 1))
        years = [each for each in range(year - 1, last + 1) if each >= self.spec.years[0]]
        cases = (self.series.rate[years] * self.tested[years]).sum(axis=1, min_count=1)
        expected = self.tested[years].mul(self.city[years], axis=1).sum(axis=1, min_count=1)
        return _shrunk_ratio(cases, expected)


def _area_keys(area: pd.Series, level: str) -> np.ndarray:
    if level == "community_area":
        return np.asarray(area.astype("float64").to_numpy(), dtype="float64")
    return np.asarray(area.astype("string").to_numpy(), dtype=object)


def _slope(values: np.ndarray) -> float:
    known = ~np.isnan(values)
    if known.sum() < 2:
        return math.nan
    x = np.arange(len(values))[known].astype("float64")
    y = values[known]
    return float(np.polyfit(x, y, 1)[0])


def pooled_relative(series: Series, tested: pd.DataFrame, city: pd.Series, years: int) -> pd.DataFrame:
    """Each area's relative rate over the `years` years up to each year (cases over the cases the city's
    rates would give), shrunk by the same estimator: pooling years makes small areas less noisy."""
    cases = (series.rate * tested).T.rolling(years, min_periods=1).sum().T
    expected = tested.mul(city, axis=1).T.rolling(years, min_periods=1).sum().T
    return _shrunk_ratio(cases, expected)


def _shrunk_ratio(cases: _Frame, expected: _Frame) -> _Frame:
    """Cases over expected cases by area (a column per year, or one Series), shrunk towards 1 by
    Marshall's estimator (the ratio's sampling variance is 1 / expected)."""
    ratio = cases / expected
    spread = (expected * (ratio - 1).pow(2)).sum() / expected.sum()
    between = np.maximum(spread - 1 / expected.mean(), 0.0)  # per column, or one number
    weight = (between / (between + 1 / expected)).fillna(0.0)
    return 1 + weight * (ratio.fillna(1.0) - 1)


def feature_table(
    spec: AreaOutcomesSpec, series: Series, smoothed: pd.DataFrame, city: pd.Series, tested: pd.DataFrame
) -> pd.DataFrame:
    """AREA_OUTCOME_FEATURES and the context columns by (area, year), each from years <= that year."""
    log_ratio = np.log(smoothed.div(city, axis=1))
    level = np.log(pooled_relative(series, tested, city, spec.mean_years))
    # A rate of 0 has no published error: the binomial one at the city's rate for the children tested.
    error = series.standard_error.fillna(np.sqrt(city * (1 - city) / tested))
    trend = log_ratio.T.rolling(spec.trend_years, min_periods=2).apply(_slope, raw=True).T
    frames = {
        "area_outcome_log_ratio": log_ratio,
        "area_outcome_log_ratio_mean": level,
        "area_outcome_trend": trend,
        "area_outcome_se_ratio": error.div(city, axis=1),
        "area_outcome_year": pd.DataFrame(
            np.broadcast_to(np.asarray(smoothed.columns, dtype="float64"), smoothed.shape),
            index=smoothed.index,
            columns=smoothed.columns,
        ),
        "area_outcome_rate": series.rate * 100,  # the published rate, in percent, for the answer text
    }
    stacked = {name: frame.stack(future_stack=True) for name, frame in frames.items()}
    table = pd.DataFrame(stacked)
    index = table.index.set_levels(table.index.levels[1].astype("float64"), level=1)
    if spec.area_level == "community_area":
        index = index.set_levels(index.levels[0].astype("float64"), level=0)
    return table.set_axis(index)[[*AREA_OUTCOME_FEATURES, *AREA_OUTCOME_CONTEXT]]


def load_area_outcomes(
    spec: AreaOutcomesSpec,
    config_path: Path,
    area_ids: list[object],
    covariates: pd.DataFrame | None = None,
) -> AreaOutcomes:
    """The series read and checked, smoothed towards `covariates`' prediction (by area, e.g. the
    community-area features) or, without, towards the city's rate, and its feature table."""
    series = read_series(spec, config_path, area_ids)
    smoothed = smooth(series, covariates)
    table = feature_table(spec, series, smoothed.rates, smoothed.city, smoothed.tested)
    rows = {
        (int(area) if spec.area_level == "community_area" else area, int(year)): values
        for (area, year), values in zip(table.index, table.to_numpy().tolist(), strict=True)
    }
    return AreaOutcomes(
        spec, series, smoothed.rates, smoothed.city, smoothed.tested, smoothed.prior, table, rows
    )
