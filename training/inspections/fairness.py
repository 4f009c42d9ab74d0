"""Fairness check: how the validated model's tiers fall across groups of establishments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MIN_GROUP_SIZE = 100  # smaller groups give rates too noisy to read


def group_metrics(
    predictions: pd.DataFrame, rows: pd.DataFrame, cut_points: dict[str, float], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Per group: size, label rate, share put in the high tier, and precision/recall of that tier.

    `predictions` are out-of-sample validation scores (inspection_id, label, score); `rows` gives each
    inspection's group columns. A group flagged far above its label rate, or with much lower recall
    than others, deserves a look before the model is used.
    """
    groups = rows[["inspection_id", *columns]].drop_duplicates("inspection_id")
    merged = predictions.merge(groups, on="inspection_id", how="left")
    merged["high"] = merged["score"] >= cut_points["high"]
    report = []
    for column in columns:
        for value, group in merged.groupby(merged[column].astype("string").fillna("Unknown")):
            if len(group) < MIN_GROUP_SIZE:
                continue
            positives = int(group["label"].sum())
            flagged = group[group["high"]]
            report.append(
                {
                    "group": column,
                    "value": str(value),
                    "n": len(group),
                    "label_rate": float(group["label"].mean()),
                    "share_high_tier": float(group["high"].mean()),
                    "precision_high_tier": float(flagged["label"].mean()) if len(flagged) else np.nan,
                    "recall_high_tier": float(flagged["label"].sum() / positives) if positives else np.nan,
                }
            )
    return report
