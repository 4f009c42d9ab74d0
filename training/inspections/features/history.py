"""The establishment's own inspection history, as known strictly before each query date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.features.family import FeatureFamily, described_by
from training.inspections.ingest import CityData
from training.points import to_day

DECAY_DAYS = 365.0
_KEY_STRIDE = 1_000_000  # > any day number we will see, so (establishment, day) packs into one int64


def history_features(
    queries: pd.DataFrame, inspections: pd.DataFrame, with_results: bool = True
) -> pd.DataFrame:
    """Previous-inspection counts, past fails and time-decayed history per query row.

    `queries` needs `establishment_id` and `date`; `inspections` is the canonical history. Only
    inspections with an outcome dated before the query date are used (same-day rows are excluded).
    Without a result column (`with_results` False) the fail features are left out.
    """
    history = inspections[inspections["has_outcome"]]
    codes, _ = pd.factorize(pd.concat([history["establishment_id"], queries["establishment_id"]]))
    history_code = codes[: len(history)].astype("int64")
    query_code = codes[len(history) :].astype("int64")

    history_day = to_day(history["date"])
    history_key = history_code * _KEY_STRIDE + history_day
    order = np.argsort(history_key, kind="stable")
    key = history_key[order]
    day = history_day[order]
    critical = history["n_critical"].to_numpy()[order]
    serious = history["n_serious"].to_numpy()[order]
    minor = history["n_minor"].to_numpy()[order]
    failed = history["failed"].to_numpy()[order].astype("float64")
    label = history["label"].to_numpy()[order].astype("float64")

    query_day = to_day(queries["date"])
    start = np.searchsorted(key, query_code * _KEY_STRIDE, side="left")
    stop = np.searchsorted(key, query_code * _KEY_STRIDE + query_day, side="left")
    n_prior = stop - start
    has_prior = n_prior > 0
    last = np.where(has_prior, stop - 1, 0)

    def window_sum(values: np.ndarray) -> np.ndarray:
        """Sum of `values` over each query's prior rows, via a prefix sum."""
        prefix: np.ndarray = np.concatenate(([0.0], np.cumsum(values, dtype="float64")))
        sums: np.ndarray = prefix[stop] - prefix[start]
        return sums

    def previous(values: np.ndarray) -> np.ndarray:
        return np.where(has_prior, values[last].astype("float64"), np.nan)

    # exp(-(d - t)/tau) = exp(-d/tau) * exp(t/tau); days are relative to 2000 to keep exponents small.
    origin = 10_957  # 2000-01-01
    growth = np.exp((day - origin) / DECAY_DAYS)
    shrink = np.exp(-(query_day - origin) / DECAY_DAYS)
    features = pd.DataFrame(
        {
            "prior_inspections": n_prior.astype("float64"),
            "first_inspection": (~has_prior).astype("float64"),
            "days_since_last": np.where(has_prior, query_day - day[last], np.nan),
            "prev_critical": previous(critical),
            "prev_serious": previous(serious),
            "prev_minor": previous(minor),
            "prev_failed": previous(failed),
            "past_fails": window_sum(failed),
            "past_critical_inspections": window_sum(label),
            "critical_decayed": shrink * window_sum(label * growth),
            "fails_decayed": shrink * window_sum(failed * growth),
            "violations_decayed": shrink * window_sum((critical + serious + minor) * growth),
        },
        index=queries.index,
    )
    if not with_results:
        features = features.drop(columns=["prev_failed", "past_fails", "fails_decayed"])
    return features


DESCRIPTIONS = {
    "prior_inspections": "number of earlier inspections of this establishment",
    "first_inspection": "1 if this is the establishment's first inspection on record",
    "days_since_last": "days since the establishment's previous inspection",
    "prev_critical": "critical violations found at the previous inspection",
    "prev_serious": "serious violations found at the previous inspection",
    "prev_minor": "minor violations found at the previous inspection",
    "prev_failed": "1 if the previous inspection failed",
    "past_fails": "number of earlier failed inspections",
    "past_critical_inspections": "number of earlier inspections with a critical violation",
    "critical_decayed": "earlier critical-violation inspections, weighted by recency (1-year decay)",
    "fails_decayed": "earlier failed inspections, weighted by recency (1-year decay)",
    "violations_decayed": "earlier violations of any class, weighted by recency (1-year decay)",
}


def _build(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame:
    features = history_features(queries, data.inspections, with_results="result" in config.columns)
    # A class the city does not have (New York has no "serious") is no feature and no word in its card.
    absent = [
        f"prev_{name}" for name in ("critical", "serious", "minor") if name not in config.severity_classes
    ]
    return features.drop(columns=absent)


HISTORY = FeatureFamily(name="history", build=_build, describe=described_by(DESCRIPTIONS))
