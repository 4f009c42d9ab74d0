"""Real area outcomes: read as configured, bad series refused in one line (or imputed and counted),
features point in time, smoothing towards the census profile's prediction (or the city's rate), and the
cohort's area pattern following the series."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression

from training.config import ConfigError
from training.lead.area_outcomes import (
    MODELLED_AREA_OUTCOME_FEATURES,
    PRIOR_FLOOR,
    load_area_outcomes,
    pooled_relative,
)
from training.lead.cohort import generate_cohort
from training.lead.config import LeadConfig, load_lead_config
from training.lead.reference import Reference

AREAS = list(range(1, 78))


def _copy(tmp_path: Path, lead_config_path: Path, edit_csv=None, toml_edit=None) -> Path:  # noqa: ANN001
    """The Chicago config and series in tmp_path (other files referenced at their real place)."""
    config = load_lead_config(lead_config_path)
    assert config.area_outcomes is not None
    source = config.area_outcomes.file
    lines = source.read_text().splitlines()
    if edit_csv is not None:
        lines = edit_csv(lines)
    (tmp_path / source.name).write_text("\n".join(lines) + "\n")
    text = config.text
    for key in ("tracts", "community_areas", "housing_age", "community_profiles", "addresses"):
        path = getattr(config, key)
        text = text.replace(f'"{path.name}"', f'"{path}"', 1)
    text = text.replace('backtest = "lead_area_backtest.json"\n', "")
    if toml_edit is not None:
        text = toml_edit(text)
    out = tmp_path / "lead.toml"
    out.write_text(text)
    return out


def _load(path: Path, covariates: pd.DataFrame | None = None):  # noqa: ANN202
    config = load_lead_config(path)
    assert config.area_outcomes is not None
    return load_area_outcomes(config.area_outcomes, config.path, AREAS, covariates)


def _drop_area(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith("Community area,Uptown,3,")]


def _drop_year(lines: list[str]) -> list[str]:
    rows = [line.split(",") for line in lines]
    header = rows[0]
    keep = [i for i, name in enumerate(header) if name not in ("LDPPH_2003", "LDPPH_2003_se")]
    return [",".join(row[i] for i in keep) for row in rows]


def _bad_rate(lines: list[str]) -> list[str]:
    header = lines[0].split(",")
    column = header.index("LDPPH_2009")
    row = lines[4].split(",")
    row[column] = "n/a"
    return [*lines[:4], ",".join(row), *lines[5:]]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_drop_area, "area 3 has no row"),
        (_drop_year, "year 2003 missing (no column 'LDPPH_2003')"),
        (_bad_rate, "year 2009: rate 'n/a' is not a number"),
    ],
)
def test_a_bad_series_is_one_config_error_line_naming_it(
    tmp_path: Path,
    lead_config_path: Path,
    edit,
    named: str,  # noqa: ANN001
) -> None:
    path = _copy(tmp_path, lead_config_path, edit)
    with pytest.raises(ConfigError) as error:
        _load(path)
    assert named in str(error.value) and error.value.key == "area_outcomes"
    # The same through the CLI: exit 2, one line, no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", "train", "--city", str(path), "--out", str(tmp_path / "m")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("civicrisk: error:")]
    assert len(errors) == 1 and named in errors[0] and "Traceback" not in result.stderr


def test_where_the_config_allows_it_bad_values_are_imputed_and_counted(
    tmp_path: Path, lead_config_path: Path, reference: Reference
) -> None:
    def everything(lines: list[str]) -> list[str]:
        return _bad_rate(_drop_year(_drop_area(lines)))

    def impute(text: str) -> str:
        return text.replace('on_bad_value = "error"', 'on_bad_value = "impute"')

    outcomes = _load(_copy(tmp_path, lead_config_path, everything, impute), reference.areas)
    assert outcomes.series.imputed == {
        "missing areas": 1,
        "missing years": 1,
        "non-numeric or impossible rates": 1,
    }
    # A missing area is unknown: its smoothed rate is the city's, not invented from neighbours or
    # predicted from its profile.
    assert outcomes.smoothed.loc[3].to_numpy() == pytest.approx(outcomes.city.to_numpy())
    assert outcomes.series.rate[2003].notna().sum() == 76  # interpolated along each area's years


def test_features_read_only_published_years_and_are_missing_before_the_series(
    reference: Reference,
) -> None:
    outcomes = reference.area_outcomes
    assert outcomes is not None
    area = pd.Series([68.0, 68.0, 68.0, 68.0, np.nan])
    as_of = pd.to_datetime(pd.Series(["1996-06-01", "1997-01-01", "2012-12-31", "2030-01-01", "2012-01-01"]))
    rows = outcomes.features(area, as_of)
    assert rows.iloc[0].isna().all()  # 1996's rates are not published until 1997
    assert rows.iloc[1]["area_outcome_year"] == 1996
    assert rows.iloc[2]["area_outcome_year"] == 2011  # lag of one year
    assert rows.iloc[3]["area_outcome_year"] == 2016  # the latest the series has
    assert rows.iloc[4].isna().all()  # outside the areas
    published = outcomes.series.rate.loc[68, 2011] * 100
    assert rows.iloc[2]["area_outcome_rate"] == pytest.approx(published)
    # The service's one-child lookup is the same table.
    for i in (1, 2, 3):
        got = outcomes.row(68, as_of.iloc[i].date())
        np.testing.assert_allclose(got, rows.iloc[i].to_numpy(), rtol=1e-12)


def test_smoothing_pulls_small_areas_towards_their_prior_more_than_large_ones(reference: Reference) -> None:
    outcomes = reference.area_outcomes
    assert outcomes is not None
    year = 2012
    raw, smooth, tested = outcomes.series.rate[year], outcomes.smoothed[year], outcomes.tested[year]
    prior = outcomes.prior[year]
    assert prior.nunique() > 70  # each area's own prediction (a few at the floor), not one city rate
    pull = ((raw - smooth) / (raw - prior)).where((raw - prior).abs() > 1e-4)
    small, large = tested < tested.quantile(0.25), tested > tested.quantile(0.75)
    assert pull[small].median() > pull[large].median() >= 0
    assert (smooth > 0).all()  # a rate of 0 in a small area is not taken as a certain 0
    assert spearmanr(raw, smooth).statistic > 0.9


@pytest.mark.parametrize("year", [1996, 2005, 2012, 2016])
def test_the_prior_is_the_census_profiles_least_squares_fit_weighted_by_children_tested(
    reference: Reference, year: int
) -> None:
    outcomes = reference.area_outcomes
    assert outcomes is not None
    profiles = reference.areas.reindex(outcomes.series.rate.index)
    assert profiles.notna().all().all()
    fit = LinearRegression().fit(
        profiles, outcomes.series.rate[year], sample_weight=outcomes.tested[year].to_numpy()
    )
    expected = np.maximum(fit.predict(profiles), PRIOR_FLOOR * outcomes.city[year])
    np.testing.assert_allclose(outcomes.prior[year].to_numpy(), expected, rtol=1e-6)


def test_a_years_smoothed_rate_and_prior_use_no_later_year(
    tmp_path: Path, lead_config_path: Path, reference: Reference
) -> None:
    """Point in time: rewriting every rate after 2011 in the file (areas' rates shuffled) leaves the
    smoothed rates, priors and features of 2011 and before as they were."""

    def scramble_later(lines: list[str]) -> list[str]:
        rows = [line.split(",") for line in lines]
        header = rows[0]
        later = [i for i, name in enumerate(header) if name.startswith("LDPPH_20") and int(name[6:10]) > 2011]
        data = rows[2:]
        shuffled = [data[(k * 7 + 3) % len(data)] for k in range(len(data))]
        for row, donor in zip(data, shuffled, strict=True):
            for i in later:
                row[i] = donor[i]
        return [",".join(row) for row in rows]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    original = _load(_copy(tmp_path / "a", lead_config_path), reference.areas)
    rewritten = _load(_copy(tmp_path / "b", lead_config_path, scramble_later), reference.areas)
    earlier = [year for year in original.smoothed.columns if year <= 2011]
    assert not rewritten.series.rate[2012].equals(original.series.rate[2012])  # the rewrite took
    pd.testing.assert_frame_equal(rewritten.smoothed[earlier], original.smoothed[earlier])
    pd.testing.assert_frame_equal(rewritten.prior[earlier], original.prior[earlier])
    keep = original.table.index.get_level_values(1) <= 2011
    pd.testing.assert_frame_equal(rewritten.table[keep], original.table[keep])


def test_without_covariates_the_prior_is_the_city_rate(tmp_path: Path, lead_config_path: Path) -> None:
    # Marshall's estimator: what a series by tract gets (the tract table has no area profile).
    outcomes = _load(_copy(tmp_path, lead_config_path))
    for year in (1996, 2012):
        assert outcomes.prior[year].to_numpy() == pytest.approx(outcomes.city[year])
        raw, smooth = outcomes.series.rate[year], outcomes.smoothed[year]
        assert ((smooth - outcomes.city[year]) * (raw - outcomes.city[year]) >= 0).all()


def test_the_cohort_follows_the_real_pattern_of_known_years_only(
    lead_config: LeadConfig, reference: Reference
) -> None:
    assert lead_config.synthetic is not None
    spec = dataclasses.replace(lead_config.synthetic, birth_years=(2008, 2010), children_per_year=3000)
    cohort = generate_cohort(spec, reference, known_until=2011)
    fit = {row["birth_year"]: row for row in cohort.calibration}
    assert fit[2008]["pattern_year"] == 2010 and fit[2009]["pattern_year"] == 2011
    assert fit[2010]["pattern_year"] == 2011 and fit[2010]["carried_forward"]
    # The expected prevalence is the fitted pattern (the real rates pooled over the known years around
    # the pattern year) to within 1%, and ranks areas as their raw published rates of that year do.
    assert all(row["median_relative_error_expected"] < 0.01 for row in fit.values())
    assert all(row["spearman_expected"] > 0.9 for row in fit.values())
    # Rewriting the years after known_until changes nothing in the cohort.
    outcomes = reference.area_outcomes
    assert outcomes is not None
    later = [year for year in outcomes.series.rate.columns if year > 2011]
    rate, tested = outcomes.series.rate.copy(), outcomes.tested.copy()
    rate[later], tested[later] = rate[later].to_numpy()[::-1], tested[later].to_numpy()[::-1]
    series = dataclasses.replace(outcomes.series, rate=rate)
    changed = dataclasses.replace(
        reference, area_outcomes=dataclasses.replace(outcomes, series=series, tested=tested)
    )
    again = generate_cohort(spec, changed, known_until=2011)
    pd.testing.assert_frame_equal(again.children, cohort.children)
    # ...while with every year known, the 2010 births follow 2011-2013 (proof the rewrite could matter).
    assert not generate_cohort(spec, changed).children["probability"].equals(cohort.children["probability"])


def test_the_pattern_pools_the_known_years_around_its_year(reference: Reference) -> None:
    """The cohort's pattern for year Y pools Y-1..Y+1, only those known: with 2011 the last known
    year, 2010's is the three years to 2011 and 2011's the two; with all known, 2011's is 2010-2012."""
    outcomes = reference.area_outcomes
    assert outcomes is not None

    def trailing(years: int, to: int) -> pd.Series:
        return pooled_relative(outcomes.series, outcomes.tested, outcomes.city, years)[to]

    pd.testing.assert_series_equal(
        outcomes.relative(2010, known_until=2011), trailing(3, 2011), check_names=False
    )
    pd.testing.assert_series_equal(
        outcomes.relative(2011, known_until=2011), trailing(2, 2011), check_names=False
    )
    pd.testing.assert_series_equal(outcomes.relative(2011), trailing(3, 2012), check_names=False)
    first = outcomes.spec.years[0]
    pd.testing.assert_series_equal(outcomes.relative(first), trailing(2, first + 1), check_names=False)


def test_area_features_are_model_features(reference: Reference) -> None:
    from training.lead.features import FEATURES, MODEL_FEATURES

    assert set(MODELLED_AREA_OUTCOME_FEATURES) <= set(MODEL_FEATURES)
    # Context for the answer text, and the standard error (its scale drifts as rates fall): not learnt from.
    for name in ("area_outcome_rate", "area_outcome_year", "area_outcome_se_ratio"):
        assert name not in MODEL_FEATURES and name in FEATURES


def test_a_tract_level_series_is_configuration_only(
    tmp_path: Path, lead_config_path: Path, reference: Reference
) -> None:
    """Another city's series by census tract: the same code reads it, keys features by the home's tract
    and fits the cohort's pattern per tract."""
    tracts = [str(tract) for tract in reference.geo.tract_ids]
    rng = np.random.default_rng(3)
    rates = {year: rng.uniform(0.5, 6.0, len(tracts)) for year in (2008, 2009, 2010)}
    frame = pd.DataFrame({"tract_id": tracts})
    for year, values in rates.items():
        frame[f"r{year}"] = values
        frame[f"r{year}_se"] = values / 5
    frame.to_csv(tmp_path / "tracts.csv", index=False)

    def by_tract(text: str) -> str:
        start = text.index("[area_outcomes]")
        end = text.index("[label]")
        section = (
            '[area_outcomes]\nfile = "tracts.csv"\narea_level = "tract"\narea_column = "tract_id"\n'
            'rate_column = "r{year}"\nstandard_error_column = "r{year}_se"\nyears = [2008, 2010]\n'
            'rate_unit = "percent"\n\n'
        )
        return text[:start] + section + text[end:]

    path = _copy(tmp_path, lead_config_path, toml_edit=by_tract)
    config = load_lead_config(path)
    assert config.area_outcomes is not None and config.area_outcomes.area_level == "tract"
    from training.lead.features import area_outcome_features
    from training.lead.reference import load_reference

    tract_reference = load_reference(config)
    outcomes = tract_reference.area_outcomes
    assert outcomes is not None
    home = tracts[10]
    queries = pd.DataFrame(
        {
            "tract": [home, home],
            "community_area": [1.0, 1.0],
            "as_of": pd.to_datetime(["2010-05-01", "2012-05-01"]),
        }
    )
    rows = area_outcome_features(queries, tract_reference)
    assert rows["area_outcome_year"].tolist() == [2009, 2010]
    assert rows["area_outcome_rate"].iloc[1] == pytest.approx(rates[2010][10])
    np.testing.assert_allclose(outcomes.row(home, pd.Timestamp("2012-05-01").date()), rows.iloc[1].to_numpy())
    assert lead_config_path != path and config.synthetic is not None
    spec = dataclasses.replace(config.synthetic, birth_years=(2008, 2008), children_per_year=3000)
    cohort = generate_cohort(spec, tract_reference)
    assert cohort.calibration[0]["pattern_year"] == 2010 and cohort.calibration[0]["areas"] > 500
    assert cohort.calibration[0]["median_relative_error_expected"] < 0.01
