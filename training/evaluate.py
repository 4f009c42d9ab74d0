"""Evaluation of inspection risk scores: Chicago-style reordering simulation and ranking metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

REQUIRED_COLUMNS = ("inspection_id", "date", "label", "score")
TOP_K_PERCENTS = (10, 20)

# Score descending, then business-as-usual order, so a tie never flatters the model.
_ORDER_COLUMNS = ["score", "date", "inspection_id"]
_ORDER_ASCENDING = [False, True, True]


def _check_frame(frame: pd.DataFrame) -> None:
    """Raise ValueError unless `frame` is a non-empty table of dated, labelled, scored inspections."""
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"evaluation frame is missing column(s): {', '.join(missing)}")
    if frame.empty:
        raise ValueError("evaluation frame is empty: no inspections to evaluate")
    if not pd.api.types.is_datetime64_any_dtype(frame["date"]):
        raise ValueError(f"evaluation frame column 'date' must be datetime64, got {frame['date'].dtype}")
    if frame["date"].isna().any():
        raise ValueError("evaluation frame column 'date' has missing values")
    if frame["score"].isna().any():
        raise ValueError("evaluation frame column 'score' has missing values")
    if not frame["label"].isin([0, 1]).all():
        raise ValueError("evaluation frame column 'label' must contain only 0 and 1")


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in model priority order (see `simulate_reordering` for the tie rule)."""
    return frame.sort_values(_ORDER_COLUMNS, ascending=_ORDER_ASCENDING, kind="stable")


def top_k_count(n: int, k: float) -> int:
    """Number of rows in the top k percent of `n` rows: ceil(n * k / 100)."""
    # Round first so float noise cannot add a row (8.8% of 375 rows is 33.00000000000001 in floats).
    return min(n, math.ceil(round(n * k / 100, 9)))


def simulate_reordering(frame: pd.DataFrame) -> pd.DataFrame:
    """Re-assign the window's real inspection dates to inspections in order of score.

    The sorted sequence of actual dates is kept as the list of slots (so each day keeps its number of
    inspections); the highest-scored inspection takes the earliest slot. Tie-break rule: score
    descending, then actual date ascending, then inspection_id ascending, so tied inspections keep
    their business-as-usual order and ties never make the model look better.

    Returns a copy of `frame` (same row order and index) with `simulated_date` and `days_earlier`
    (actual minus simulated date, in days, as float; positive means found earlier).
    """
    _check_frame(frame)
    # Work by position so a duplicated or non-default index cannot misalign slots and rows.
    order = _ranked(frame.reset_index(drop=True)).index.to_numpy()
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    slots = frame["date"].sort_values(kind="stable").array
    result = frame.copy()
    result["simulated_date"] = slots[rank]
    result["days_earlier"] = (
        (result["date"] - result["simulated_date"]).dt.total_seconds() / 86_400.0
    ).astype("float64")
    return result


def _window(frame: pd.DataFrame, start: date | None, end: date | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    first = pd.Timestamp(start) if start is not None else frame["date"].min().normalize()
    last = pd.Timestamp(end) if end is not None else frame["date"].max().normalize()
    if last < first:
        raise ValueError(f"evaluation window ends ({last.date()}) before it starts ({first.date()})")
    days = frame["date"].dt.normalize()
    outside = (days < first) | (days > last)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} inspection(s) fall outside the evaluation window "
            f"{first.date().isoformat()} to {last.date().isoformat()}"
        )
    return first, last


def _precision_recall(ranked_labels: np.ndarray, k: float) -> tuple[float, float]:
    count = top_k_count(len(ranked_labels), k)
    hits = float(ranked_labels[:count].sum())
    positives = float(ranked_labels.sum())
    precision = hits / count if count else math.nan
    recall = hits / positives if positives else math.nan
    return precision, recall


def evaluate_scores(
    frame: pd.DataFrame, start: date | None = None, end: date | None = None
) -> dict[str, float | int | str]:
    """Ranking metrics and the reordering simulation for one evaluation window.

    `frame` needs inspection_id, date, label and score. `start`/`end` bound the window (inclusive);
    when omitted the first and last inspection dates are used. Every row must lie inside the window.
    Metrics that are undefined for the window (AUC with one class, recall with no positives) are NaN.
    """
    _check_frame(frame)
    if isinstance(frame["date"].dtype, pd.DatetimeTZDtype):
        # Window bounds are plain dates, so compare in the frame's local wall-clock time.
        frame = frame.assign(date=frame["date"].dt.tz_localize(None))
    first, last = _window(frame, start, end)
    simulated = simulate_reordering(frame)
    labels = simulated["label"].to_numpy(dtype="int64")
    positive = labels == 1
    n_positive = int(positive.sum())

    metrics: dict[str, float | int | str] = {}
    if n_positive in (0, len(labels)):
        metrics["auc"] = math.nan
    else:
        metrics["auc"] = float(roc_auc_score(labels, simulated["score"].to_numpy(dtype="float64")))

    ranked_labels = _ranked(simulated)["label"].to_numpy(dtype="int64")
    for k in TOP_K_PERCENTS:
        precision, recall = _precision_recall(ranked_labels, k)
        metrics[f"precision_at_{k}"] = precision
        metrics[f"recall_at_{k}"] = recall

    midpoint = first + (last - first) / 2
    if n_positive:
        found = simulated.loc[positive]
        metrics["days_earlier"] = float(found["days_earlier"].mean())
        metrics["first_half_share_model"] = float((found["simulated_date"] <= midpoint).mean())
        metrics["first_half_share_actual"] = float((found["date"] <= midpoint).mean())
    else:
        metrics["days_earlier"] = math.nan
        metrics["first_half_share_model"] = math.nan
        metrics["first_half_share_actual"] = math.nan

    metrics["n_inspections"] = len(labels)
    metrics["n_positive"] = n_positive
    metrics["base_rate"] = n_positive / len(labels)
    metrics["window_start"] = first.date().isoformat()
    metrics["window_end"] = last.date().isoformat()
    return metrics


def _labels_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    label_array = np.asarray(labels, dtype="float64").ravel()
    score_array = np.asarray(scores, dtype="float64").ravel()
    if label_array.shape != score_array.shape:
        raise ValueError(f"labels ({label_array.size}) and scores ({score_array.size}) differ in length")
    if label_array.size == 0:
        raise ValueError("no labels and scores given")
    if np.isnan(score_array).any() or np.isnan(label_array).any():
        raise ValueError("labels and scores must not contain missing values")
    return label_array, score_array


def calibration_table(labels: ArrayLike, scores: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Mean predicted score against observed positive rate per score quantile bin.

    Bins are score quantiles; bins that collapse because of repeated scores are merged, so fewer than
    `bins` rows may come back. Columns: bin, lower, upper, count, mean_predicted, observed_rate.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    label_array, score_array = _labels_scores(labels, scores)
    table = pd.DataFrame({"label": label_array, "score": score_array})
    if np.unique(score_array).size < 2:
        # qcut cannot build edges from a single value; it is one bin by definition.
        table["bin"] = 0
    else:
        table["bin"] = pd.qcut(table["score"], q=bins, labels=False, duplicates="drop")
    grouped = table.groupby("bin", sort=True)
    result = pd.DataFrame(
        {
            "lower": grouped["score"].min(),
            "upper": grouped["score"].max(),
            "count": grouped["score"].size(),
            "mean_predicted": grouped["score"].mean(),
            "observed_rate": grouped["label"].mean(),
        }
    )
    result = result.reset_index()
    result["bin"] = np.arange(len(result))
    return result


def precision_at_k_curve(labels: ArrayLike, scores: ArrayLike, ks: Sequence[float]) -> pd.DataFrame:
    """Precision and recall in the top k percent of rows by score, for each k in `ks`.

    Ties keep the input order, so pass rows sorted by date then inspection_id to match the tie rule
    of `evaluate_scores`. Columns: k (percent), n (rows in the top k%), precision, recall.
    """
    label_array, score_array = _labels_scores(labels, scores)
    order = np.argsort(-score_array, kind="stable")
    ranked = label_array[order]
    rows = []
    for k in ks:
        if not 0 < k <= 100:
            raise ValueError(f"k must be a percentage in (0, 100], got {k}")
        precision, recall = _precision_recall(ranked, k)
        rows.append(
            {"k": float(k), "n": top_k_count(len(ranked), k), "precision": precision, "recall": recall}
        )
    return pd.DataFrame(rows, columns=["k", "n", "precision", "recall"])


def permutation_importance_auc(
    model: Any, features: pd.DataFrame, labels: np.ndarray, columns: list[str]
) -> dict[str, float]:
    """Permutation importance (drop in AUC) of each of `columns` for a fitted model on held-out rows."""
    # Imported here: the service imports this module (training.serving) for its metrics, and
    # sklearn.inspection pulls in estimators and plotting helpers that serving never uses.
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        model, features[columns], labels, scoring="roc_auc", n_repeats=3, random_state=0
    )
    return dict(zip(columns, (float(v) for v in result.importances_mean), strict=True))
