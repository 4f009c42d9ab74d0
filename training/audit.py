"""Group fairness audit of a ranked list, with Aequitas' definitions and its tau = 0.8 parity rule.

The `aequitas` package itself needs pandas < 3 (this project pins pandas 3.1), so the same definitions
are computed here (Saleiro et al., "Aequitas: A Bias and Fairness Audit Toolkit", 2018):

- the top `top_share` of rows by score are the predicted positives (ties: earlier row first);
- per group: TPR = TP / (TP + FN), FNR = FN / (TP + FN), FPR = FP / (FP + TN),
  precision = TP / (TP + FP), predicted prevalence = (TP + FP) / group size;
- disparity = group metric / reference-group metric; a group passes a metric when
  tau <= disparity <= 1 / tau. A disparity that divides by zero is undefined (no pass or fail).

Model-agnostic: it takes scores, labels and a group column, so any model (lead, inspections) can use it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.evaluate import top_k_count

METRICS = ("tpr", "fnr", "fpr", "precision", "predicted_prevalence")
TAU = 0.8
MIN_GROUP_SIZE = 100  # smaller groups are reported but flagged: their rates are too noisy to read


def predicted_positive(scores: ArrayLike, top_share: float) -> np.ndarray:
    """Boolean mask of the top `top_share` of rows by score; ties keep input order."""
    values = np.asarray(scores, dtype="float64")
    if not 0 < top_share <= 1:
        raise ValueError(f"top_share must be in (0, 1], got {top_share}")
    order = np.argsort(-values, kind="stable")
    flagged = np.zeros(len(values), dtype=bool)
    flagged[order[: top_k_count(len(values), top_share * 100)]] = True
    return flagged


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _group_row(labels: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    tp = int((flagged & (labels == 1)).sum())
    fp = int((flagged & (labels == 0)).sum())
    fn = int((~flagged & (labels == 1)).sum())
    tn = int((~flagged & (labels == 0)).sum())
    return {
        "n": len(labels),
        "positives": tp + fn,
        "predicted_positive": tp + fp,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "tpr": _ratio(tp, tp + fn),
        "fnr": _ratio(fn, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "predicted_prevalence": _ratio(tp + fp, len(labels)),
    }


def parity(disparity: float, tau: float = TAU) -> bool | None:
    """Aequitas' rule: True when tau <= disparity <= 1/tau, None when the disparity is undefined."""
    if not math.isfinite(disparity):
        return None
    return tau <= disparity <= 1 / tau


def default_reference(rows: dict[str, dict[str, Any]]) -> str:
    """The largest group whose five metrics are all defined and non-zero, else the largest group.

    Aequitas' default reference is the largest ("majority") group; the restriction keeps every
    disparity defined when the largest group happens to have no flagged or no positive members.
    Ties go to the first name in sorted order, so the choice is stable.
    """
    usable = [n for n, r in rows.items() if all(math.isfinite(r[m]) and r[m] > 0 for m in METRICS)]
    return max(usable or list(rows), key=lambda name: rows[name]["n"])


def group_audit(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    attribute: str,
    top_share: float = 0.05,
    reference: str | None = None,
    tau: float = TAU,
) -> dict[str, Any]:
    """Audit one attribute: per-group confusion counts, the five metrics, disparities and pass/fail.

    `reference` defaults to `default_reference`. Missing group values form the group "Unknown"; groups
    named by numbers sort numerically.
    Returns {attribute, reference, top_share, tau, threshold_score, groups}.
    """
    label_array = np.asarray(labels, dtype="int64")
    group_values = pd.Series(groups).astype("string").fillna("Unknown").to_numpy()
    score_array = np.asarray(scores, dtype="float64")
    if not (len(label_array) == len(group_values) == len(score_array)) or len(score_array) == 0:
        raise ValueError("scores, labels and groups must be non-empty and of equal length")
    if not np.isin(label_array, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    flagged = predicted_positive(score_array, top_share)
    names = sorted(
        {str(v) for v in group_values}, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v)
    )
    rows = {
        name: _group_row(label_array[group_values == name], flagged[group_values == name]) for name in names
    }
    if reference is None:
        reference = default_reference(rows)
    elif reference not in rows:
        raise ValueError(f"reference group {reference!r} is not among the {attribute} groups")
    base = rows[reference]
    table = []
    for name, row in rows.items():
        entry: dict[str, Any] = {"attribute": attribute, "group": name, **row}
        for metric in METRICS:
            disparity = _ratio(row[metric], base[metric]) if math.isfinite(row[metric]) else math.nan
            entry[f"{metric}_disparity"] = disparity
            entry[f"{metric}_pass"] = parity(disparity, tau)
        entry["small_group"] = row["n"] < MIN_GROUP_SIZE
        table.append(entry)
    return {
        "attribute": attribute,
        "reference": reference,
        "top_share": top_share,
        "tau": tau,
        "threshold_score": float(score_array[flagged].min()) if flagged.any() else math.nan,
        "groups": table,
    }


def failures(audit: dict[str, Any]) -> list[str]:
    """'group: metric (disparity)' for every failed parity test, skipping small groups."""
    found = []
    for row in audit["groups"]:
        if row["small_group"]:
            continue
        for metric in METRICS:
            if row[f"{metric}_pass"] is False:
                found.append(f"{row['group']}: {metric} ({row[f'{metric}_disparity']:.2f})")
    return found
