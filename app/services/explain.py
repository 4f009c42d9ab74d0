"""Scores to answers: tier from the bundle's validated cut-points and the top reasons in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.services.linear import Scored, ScoredRows
from app.services.records import FeatureLayout, RecordBatch, RecordRows

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

    def label_one(self, score: float) -> str:
        return "high" if score >= self.high else "medium" if score >= self.medium else "low"


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
    top = min(TOP_REASONS, width)
    if n <= SMALL_BATCH:
        # For a few rows, plain Python beats numpy's per-call overhead (argpartition, take_along_axis).
        rows = contributions.tolist()
        numeric_rows = batch.numeric.tolist()
        numeric_index = layout.numeric_column
        chosen = [_largest(row, top) for row in rows]
        picked = [[row[j] for j in best] for row, best in zip(rows, chosen, strict=True)]
        numbers = [
            [values[numeric_index[j]] for j in best]
            for values, best in zip(numeric_rows, chosen, strict=True)
        ]
        return _results(
            scored.scores.tolist(),
            tiers.label(scored.scores),
            chosen,
            picked,
            numbers,
            batch,
            layout,
            descriptions,
        )
    magnitude = np.abs(contributions)
    # argpartition finds the top few per row in linear time; only those few are then sorted.
    candidates = (
        np.argpartition(-magnitude, top - 1, axis=1)[:, :top]
        if width > top
        else np.tile(np.arange(width), (n, 1))
    )
    order = np.take_along_axis(magnitude, candidates, axis=1).argsort(axis=1)[:, ::-1]
    chosen_array = np.take_along_axis(candidates, order, axis=1)
    picked_array = np.take_along_axis(contributions, chosen_array, axis=1)
    # Each reason's input value in one gather (categorical reasons read column 0 here and are
    # replaced by their category in _results).
    columns = np.asarray(layout.numeric_column, dtype=np.intp)[chosen_array]
    numbers_array = np.take_along_axis(batch.numeric, columns, axis=1) if batch.numeric.shape[1] else columns
    return _results(
        scored.scores.tolist(),
        tiers.label(scored.scores),
        chosen_array.tolist(),
        picked_array.tolist(),
        numbers_array.tolist(),
        batch,
        layout,
        descriptions,
    )


def explain_rows(
    scored: ScoredRows,
    rows: RecordRows,
    layout: FeatureLayout,
    descriptions: Sequence[str],
    tiers: Tiers,
) -> list[dict[str, Any]]:
    """`explain` for records scored in plain Python (`CompiledLinear.score_rows`): the same answer."""
    top = min(TOP_REASONS, len(layout.names))
    numeric_index, category_of = layout.numeric_column, layout.category_of
    chosen = [_largest(row, top) for row in scored.contributions]
    picked = [[row[j] for j in best] for row, best in zip(scored.contributions, chosen, strict=True)]
    numbers = [
        [None if j in category_of else _number(values[numeric_index[j]]) for j in best]
        for values, best in zip(rows.numeric, chosen, strict=True)
    ]
    labels = [tiers.label_one(score) for score in scored.scores]
    return _results(scored.scores, labels, chosen, picked, numbers, rows, layout, descriptions)


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _largest(row: list[float], top: int) -> list[int]:
    """Positions of the `top` largest magnitudes, largest first (the earlier position on ties)."""
    magnitude = list(map(abs, row))
    # sorted() is stable under reverse=True, so ties keep the earlier position; for ~60 values it
    # beats heapq.nlargest, whose loop is Python.
    return sorted(range(len(row)), key=magnitude.__getitem__, reverse=True)[:top]


def _results(
    scores: list[float],
    labels: list[str],
    chosen: list[list[int]],
    picked: list[list[float]],
    numbers: list[list[Any]],
    batch: RecordBatch | RecordRows,
    layout: FeatureLayout,
    descriptions: Sequence[str],
) -> list[dict[str, Any]]:
    names, category_of = layout.names, layout.category_of
    categorical = batch.categorical
    results: list[dict[str, Any]] = []
    for row, (score, tier, features, contributions, values) in enumerate(
        zip(scores, labels, chosen, picked, numbers, strict=True)
    ):
        reasons = []
        for feature, contribution, number in zip(features, contributions, values, strict=True):
            if contribution == 0.0 or contribution != contribution:
                continue  # an occlusion-free feature or a neutral category explains nothing
            k = category_of.get(feature)
            value: float | str | None
            if k is not None:
                value = categorical[k][row]
            else:
                value = None if number is None or number != number else number
            reasons.append(
                {
                    "feature": names[feature],
                    "value": value,
                    "contribution": contribution,
                    "text": reason_text(descriptions[feature], value, contribution),
                }
            )
        results.append({"score": score, "tier": tier, "reasons": reasons})
    return results
