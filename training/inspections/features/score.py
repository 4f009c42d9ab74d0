"""The establishment's earlier inspection scores (points: lower is better in most cities), as known
strictly before each query date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.features.family import FeatureFamily, described_by, mapped_columns
from training.inspections.ingest import CityData
from training.points import to_day

_KEY_STRIDE = 1_000_000  # > any day number, so (establishment, day) packs into one int64


def score_features(queries: pd.DataFrame, inspections: pd.DataFrame) -> pd.DataFrame:
    """Previous score, the change between the two previous scores, and the mean of all earlier ones.

    Only scored inspections dated before the query date count (same-day rows are excluded).
    """
    history = inspections[inspections["has_outcome"] & inspections["score"].notna()]
    codes, _ = pd.factorize(pd.concat([history["establishment_id"], queries["establishment_id"]]))
    history_code = codes[: len(history)].astype("int64")
    query_code = codes[len(history) :].astype("int64")
    history_key = history_code * _KEY_STRIDE + to_day(history["date"])
    order = np.argsort(history_key, kind="stable")
    key = history_key[order]
    score = history["score"].to_numpy(dtype="float64")[order]

    query_day = to_day(queries["date"])
    start = np.searchsorted(key, query_code * _KEY_STRIDE, side="left")
    stop = np.searchsorted(key, query_code * _KEY_STRIDE + query_day, side="left")
    n_prior = stop - start
    last = np.where(n_prior > 0, stop - 1, 0)
    before_last = np.where(n_prior > 1, stop - 2, 0)
    prefix = np.concatenate(([0.0], np.cumsum(score)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (prefix[stop] - prefix[start]) / n_prior
    previous = np.where(n_prior > 0, score[last] if len(score) else np.nan, np.nan)
    trend = np.where(n_prior > 1, previous - (score[before_last] if len(score) else np.nan), np.nan)
    return pd.DataFrame(
        {
            "prev_score": previous,
            "score_trend": trend,
            "past_score_mean": np.where(n_prior > 0, mean, np.nan),
        },
        index=queries.index,
    )


DESCRIPTIONS = {
    "prev_score": "score of the previous inspection",
    "score_trend": "previous inspection's score minus the one before it",
    "past_score_mean": "mean score of the establishment's earlier inspections",
}


def _build(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame:
    return score_features(queries, data.inspections)


def _needs(document: Mapping[str, Any]) -> str | None:
    return None if "score" in mapped_columns(document) else "needs inspections.columns.score"


SCORE = FeatureFamily(name="score", build=_build, describe=described_by(DESCRIPTIONS), needs=_needs)
