"""Ranking metrics for a list of children: AUC, precision and recall in the top 1/5/10%, calibration.

Ties in score keep the list's order (children sorted by id), so a tie never flatters the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import brier_score_loss, roc_auc_score

from training.evaluate import calibration_table, top_k_count

TOP_K_PERCENTS = (1, 5, 10)


def ranking_metrics(labels: ArrayLike, scores: ArrayLike) -> dict[str, Any]:
    """AUC, precision_at_k / recall_at_k for k in TOP_K_PERCENTS, Brier score, counts and base rate."""
    label_array = np.asarray(labels, dtype="int64")
    score_array = np.asarray(scores, dtype="float64")
    if len(label_array) == 0:
        raise ValueError("no children to evaluate")
    positives = int(label_array.sum())
    metrics: dict[str, Any] = {
        "auc": float(roc_auc_score(label_array, score_array))
        if 0 < positives < len(label_array)
        else math.nan
    }
    ranked = label_array[np.argsort(-score_array, kind="stable")]
    for k in TOP_K_PERCENTS:
        count = top_k_count(len(ranked), k)
        hits = int(ranked[:count].sum())
        metrics[f"precision_at_{k}"] = hits / count if count else math.nan
        metrics[f"recall_at_{k}"] = hits / positives if positives else math.nan
    metrics["brier"] = float(brier_score_loss(label_array, score_array))
    metrics["n_children"] = len(label_array)
    metrics["n_positive"] = positives
    metrics["base_rate"] = positives / len(label_array)
    return metrics


def calibration_rows(labels: ArrayLike, scores: ArrayLike) -> list[dict[str, Any]]:
    """Score-decile calibration table as JSON-able rows (training.evaluate.calibration_table)."""
    table = calibration_table(labels, scores)
    return [
        {key: (int(v) if key in ("bin", "count") else float(v)) for key, v in row.items()}
        for row in table.to_dict("records")
    ]
