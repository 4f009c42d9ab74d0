"""What both tasks' training shares: a grid entry, and tier cut-points from validation scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

TIER_TOP_SHARES = {"high": 0.10, "medium": 0.30}  # share of validation inspections at or above each tier


def tier_cut_points(validation_scores: np.ndarray) -> dict[str, float]:
    """Score thresholds putting the top 10% of validation inspections in `high`, the next 20% in `medium`."""
    return {tier: float(np.quantile(validation_scores, 1 - share)) for tier, share in TIER_TOP_SHARES.items()}


def assign_tiers(scores: np.ndarray, cut_points: dict[str, float]) -> np.ndarray:
    return np.where(
        scores >= cut_points["high"], "high", np.where(scores >= cut_points["medium"], "medium", "low")
    )


@dataclass
class Candidate:
    """One entry in the grid: a name, an unfitted estimator, and the feature columns it reads."""

    name: str
    estimator: Any
    features: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    baseline: bool = False

    def fresh(self) -> Any:
        return clone(self.estimator)
