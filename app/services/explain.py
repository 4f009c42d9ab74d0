"""Scores to answers: tier from the bundle's validated cut-points and the top reasons in words."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.services.linear import Scored
from app.services.records import FeatureLayout, RecordBatch

TOP_REASONS = 3
SMALL_BATCH = 8


@dataclass(frozen=True)
class Tiers:
    """Validated cut-points: high if score >= high, medium if score >= medium, else low."""

    high: float
    medium: float

    def label(self, scores: np.ndarray) -> list[str]:
        labels: list[str] = np.where(
            scores >= self.high, "high", np.where(scores >= self.medium, "medium", "low")
        ).tolist()
        return labels


def _value_text(value: float | str | None) -> str:
    if value is None:
        return "not known"
    if isinstance(value, str):
        return f"“{value}”"
    return f"{value:.4g}"


def reason_text(description: str, value: float | str | None, contribution: float) -> str:
    """E.g. "raises the risk: critical violations found at the previous inspection is 2 (+0.41)"."""
    direction = "raises" if contribution > 0 else "lowers"
    return f"{direction} the risk: {description} is {_value_text(value)} ({contribution:+.2f} log-odds)"


def explain(
    scored: Scored,
    batch: RecordBatch,
    layout: FeatureLayout,
    descriptions: Sequence[str],
    tiers: Tiers,
) -> list[dict[str, Any]]:
    """One result per record: score, tier and the TOP_REASONS largest contributions, largest first."""
    contributions = scored.contributions
    n, width = contributions.shape
    if n <= SMALL_BATCH:
        # For a few rows, plain Python beats numpy's per-call overhead (argpartition, take_along_axis).
        chosen_rows = []
        picked_rows = []
        for row in contributions.tolist():
            best = heapq.nlargest(min(TOP_REASONS, width), range(width), key=lambda j: abs(row[j]))
            chosen_rows.append(best)
            picked_rows.append([row[j] for j in best])
        return _results(scored, batch, layout, descriptions, tiers, chosen_rows, picked_rows)
    top = min(TOP_REASONS, width)
    magnitude = np.abs(contributions)
    # argpartition finds the top few per row in linear time; only those few are then sorted.
    candidates = (
        np.argpartition(-magnitude, top - 1, axis=1)[:, :top]
        if width > top
        else np.tile(np.arange(width), (n, 1))
    )
    order = np.take_along_axis(magnitude, candidates, axis=1).argsort(axis=1)[:, ::-1]
    chosen = np.take_along_axis(candidates, order, axis=1)
    picked = np.take_along_axis(contributions, chosen, axis=1)
    return _results(scored, batch, layout, descriptions, tiers, chosen.tolist(), picked.tolist())


def _results(
    scored: Scored,
    batch: RecordBatch,
    layout: FeatureLayout,
    descriptions: Sequence[str],
    tiers: Tiers,
    chosen: list[list[int]],
    picked: list[list[float]],
) -> list[dict[str, Any]]:
    names = layout.names
    numeric_index = {name: j for j, name in enumerate(layout.numeric)}
    category_index = {name: k for k, name in enumerate(layout.categorical)}
    numeric = batch.numeric
    results: list[dict[str, Any]] = []
    for row, (score, tier, features, values) in enumerate(
        zip(scored.scores.tolist(), tiers.label(scored.scores), chosen, picked, strict=True)
    ):
        reasons = []
        for feature, contribution in zip(features, values, strict=True):
            if contribution == 0.0 or math.isnan(contribution):
                continue  # an occlusion-free feature or a neutral category explains nothing
            name = names[feature]
            value: float | str | None
            if name in category_index:
                value = batch.categorical[category_index[name]][row]
            else:
                raw = float(numeric[row, numeric_index[name]])
                value = None if math.isnan(raw) else raw
            reasons.append(
                {
                    "feature": name,
                    "value": value,
                    "contribution": contribution,
                    "text": reason_text(descriptions[feature], value, contribution),
                }
            )
        results.append({"score": score, "tier": tier, "reasons": reasons})
    return results
