"""Area-level backtest against real outcomes: does the model rank areas as their real later rates do?

For each year Y: the synthetic cohort is regenerated with its area pattern fitted on real years <= Y only
and births ending three years before Y's end; the lead grid is validated and the best model refitted on
children whose outcomes closed by 31 December Y (as `civicrisk train --until` does). On 1 January Y+1,
when year Y's rates are published, a standard child (STANDARD_AGE_DAYS old) is scored at every known
address; each area's mean score is compared with the area's real rates of Y+1..Y+HORIZON_YEARS (their
mean) by Spearman and Pearson correlation, with bootstrap intervals over areas. Baselines are computed
the same way, from the same addresses: the area's last observed rate (year Y, as published), the same
rate smoothed as the model's features read it (training/lead/area_outcomes.py), its median household
income (lower ranks higher) and the tract housing-age index. The children are synthetic; the areas'
rates they are judged against are real. By default every year the series can judge is backtested
(`default_years`), so no choice of years flatters the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from training.config import ConfigError
from training.lead.cohort import AREA_YEAR_OFFSET
from training.lead.config import LeadConfig, load_lead_config
from training.lead.data import LeadData, lead_data
from training.lead.features import build_features
from training.lead.train import fit_lead
from training.progress import Progress, stderr_progress

HORIZON_YEARS = 3
STANDARD_AGE_DAYS = 182  # the standard child: six months old on the scoring date
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
METHODS = ("model", "last_observed_rate", "smoothed_last_rate", "median_income", "housing_age_index")


def backtest_config(config: LeadConfig, year: int) -> LeadConfig:
    """The config with its synthetic births moved so the last birth year is Y-3 (the same span)."""
    if config.synthetic is None:
        raise ConfigError(config.path, "outcomes.source", "the area backtest regenerates a synthetic cohort")
    first, last = config.synthetic.birth_years
    births = (year - 3 - (last - first), year - 3)
    return dataclasses.replace(config, synthetic=dataclasses.replace(config.synthetic, birth_years=births))


def default_years(config: LeadConfig) -> list[int]:
    """Every year the series can judge, not a chosen few: from the first Y whose whole training
    cohort (births ending Y - 3) follows a real area pattern, to the last Y with HORIZON_YEARS real
    years after it. Chicago's 1996-2016 series and eight birth years give 2004-2013."""
    if config.synthetic is None or config.area_outcomes is None:
        raise ConfigError(
            config.path, "area_outcomes", "the area backtest needs a synthetic cohort and an area series"
        )
    first_birth, last_birth = config.synthetic.birth_years
    first_year, last_year = config.area_outcomes.years
    earliest = first_year - AREA_YEAR_OFFSET + 3 + (last_birth - first_birth)
    return list(range(earliest, last_year - HORIZON_YEARS + 1))


def standard_children(data: LeadData, as_of: pd.Timestamp) -> pd.DataFrame:
    """A STANDARD_AGE_DAYS-old child at every known address inside the city, scored on `as_of`."""
    points = pd.read_csv(data.config.addresses, usecols=["latitude", "longitude"]).dropna()
    place = data.reference.geo.locate_many(points["latitude"], points["longitude"])
    queries = pd.DataFrame(
        {
            "birth_date": as_of - pd.Timedelta(days=STANDARD_AGE_DAYS),
            "as_of": as_of,
            "latitude": points["latitude"].to_numpy(),
            "longitude": points["longitude"].to_numpy(),
            "tract": place["tract"].to_numpy(),
            "community_area": place["community_area"].to_numpy(),
        }
    )
    return queries[queries["community_area"].notna()].reset_index(drop=True)


def correlations(
    predicted: pd.Series, real: pd.Series, rng: np.random.Generator, reference: pd.Series | None = None
) -> dict[str, Any]:
    """Spearman and Pearson with 95% bootstrap intervals over areas; with `reference`, also the
    bootstrap interval of Spearman(predicted) - Spearman(reference) on the same resamples."""
    x, y = predicted.to_numpy(), real.to_numpy()
    out: dict[str, Any] = {
        "spearman": float(spearmanr(x, y).statistic),
        "pearson": float(pearsonr(x, y).statistic),
    }
    draws = rng.integers(0, len(x), (BOOTSTRAP_SAMPLES, len(x)))
    spearman = np.array([spearmanr(x[d], y[d]).statistic for d in draws])
    pearson = np.array([pearsonr(x[d], y[d]).statistic for d in draws])
    out["spearman_ci"] = [float(v) for v in np.nanpercentile(spearman, [2.5, 97.5])]
    out["pearson_ci"] = [float(v) for v in np.nanpercentile(pearson, [2.5, 97.5])]
    if reference is not None:
        z = reference.to_numpy()
        other = np.array([spearmanr(z[d], y[d]).statistic for d in draws])
        out["spearman_minus_last_rate_ci"] = [
            float(v) for v in np.nanpercentile(spearman - other, [2.5, 97.5])
        ]
    return out


def backtest_year(config: LeadConfig, year: int, progress: Progress) -> dict[str, Any]:
    """One row of the table: train to Y, score standard children, correlate with Y+1..Y+3."""
    data = lead_data(backtest_config(config, year), progress, known_until=year)
    outcomes = data.reference.area_outcomes
    if outcomes is None:
        raise ConfigError(config.path, "area_outcomes", "the area backtest needs an [area_outcomes] series")
    if outcomes.spec.area_level != "community_area":
        raise ConfigError(
            config.path, "area_outcomes.area_level", "the area backtest compares community areas"
        )
    future = [y for y in range(year + 1, year + HORIZON_YEARS + 1) if y <= outcomes.spec.years[1]]
    if not future or year < outcomes.spec.years[0]:
        raise ValueError(f"no real rates after {year} (or none by {year}) to judge a backtest at {year}")
    fitted = fit_lead(data, pd.Timestamp(f"{year}-12-31"), progress)
    as_of = pd.Timestamp(f"{year + 1}-01-01")
    queries = standard_children(data, as_of)
    progress(f"scoring a standard child at {len(queries)} addresses on {as_of.date()}")
    features = build_features(
        queries, data.outcomes.tests, data.reference, config.threshold, config.block_radius_m
    )
    columns = fitted.best.candidate.features
    scores = fitted.model.predict_proba(features[columns])[:, 1]
    area = queries["community_area"].astype("int64")

    def by_address(rates: pd.Series) -> pd.Series:
        """An area-level rate read at each address, averaged by area as the scores are."""
        return rates.reindex(area).set_axis(area.index).groupby(area).mean()

    by_area = pd.DataFrame(
        {
            "model": pd.Series(scores).groupby(area).mean(),
            "last_observed_rate": by_address(outcomes.series.rate[year]),
            # The same year's rate as the model's features read it (after smoothing).
            "smoothed_last_rate": by_address(outcomes.smoothed[year]),
            # Lower income ranks higher, so the baseline's score is the negative income.
            "median_income": -features["ca_median_income"].groupby(area).mean(),
            "housing_age_index": features["tract_housing_risk_index"].groupby(area).mean(),
        }
    )
    real = outcomes.series.rate[future].mean(axis=1).reindex(by_area.index)
    known = by_area.notna().all(axis=1) & real.notna()
    by_area, real = by_area[known], real[known]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    methods = {
        name: correlations(
            by_area[name], real, rng, by_area["last_observed_rate"] if name == "model" else None
        )
        for name in METHODS
    }
    return {
        "year": year,
        "real_years": future,
        "areas": int(known.sum()),
        "addresses": len(queries),
        "model": fitted.best.candidate.name,
        "children": len(fitted.examples.labels),
        "births": list(data.config.synthetic.birth_years) if data.config.synthetic else None,
        "methods": methods,
        "model_beats_last_rate": {
            stat: methods["model"][stat] > methods["last_observed_rate"][stat]
            for stat in ("spearman", "pearson")
        },
    }


def _cell(method: dict[str, Any], stat: str) -> str:
    low, high = method[f"{stat}_ci"]
    return f"{method[stat]:.3f} [{low:.2f}, {high:.2f}]"


def markdown_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per backtest year: Spearman [95% CI] / Pearson [95% CI] of every method."""
    names = {
        "model": "model",
        "last_observed_rate": "area's last observed rate",
        "smoothed_last_rate": "the same, smoothed (the model's input)",
        "median_income": "median income (lower = higher)",
        "housing_age_index": "housing-age index",
    }
    header = [
        "trained to Y",
        "judged on",
        *[f"{names[m]}: Spearman / Pearson" for m in METHODS],
        "model − last rate: Spearman [95% CI]",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        judged = f"{row['real_years'][0]}–{row['real_years'][-1]} ({row['areas']} areas)"
        # A method a results file of an earlier version lacks: a dash.
        cells = [
            f"{_cell(row['methods'][m], 'spearman')} / {_cell(row['methods'][m], 'pearson')}"
            if m in row["methods"]
            else "—"
            for m in METHODS
        ]
        model, last = row["methods"]["model"], row["methods"]["last_observed_rate"]
        low, high = model.get("spearman_minus_last_rate_ci") or (math.nan, math.nan)
        cells.append(f"{model['spearman'] - last['spearman']:+.3f} [{low:+.2f}, {high:+.2f}]")
        lines.append("| " + " | ".join([str(row["year"]), judged, *cells]) + " |")
    return lines


def wins(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """In how many of the years the model's correlation is above the last observed rate's."""
    return {
        "years": len(rows),
        **{
            stat: sum(bool(row["model_beats_last_rate"][stat]) for row in rows)
            for stat in ("spearman", "pearson")
        },
    }


def evaluate_areas(
    config_path: Path, years: Sequence[int] | None = None, progress: Progress = stderr_progress
) -> dict[str, Any]:
    """The `civicrisk evaluate-areas` entry point: every year's row (by default every year the series
    can judge, `default_years`) and whether the model beat the last observed rate on all of them."""
    config = load_lead_config(config_path)
    rows = [backtest_year(config, year, progress) for year in years or default_years(config)]
    return {
        "city": config.city,
        "config": config.path.name,
        "standard_age_days": STANDARD_AGE_DAYS,
        "horizon_years": HORIZON_YEARS,
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
        "rows": rows,
        "model_beats_last_rate_every_year": all(row["model_beats_last_rate"]["spearman"] for row in rows),
        "model_beats_last_rate_in": wins(rows),
    }


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The last line of `civicrisk evaluate-areas`: Spearman of the model and of each baseline by year."""
    return {
        "model_beats_last_rate_every_year": results["model_beats_last_rate_every_year"],
        "model_beats_last_rate_in": wins(results["rows"]),
        "spearman": {
            str(row["year"]): {name: round(row["methods"][name]["spearman"], 4) for name in METHODS}
            for row in results["rows"]
        },
    }
