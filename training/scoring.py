"""Scoring with a verified bundle, shared by both tasks: probabilities, and the report of a CSV run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.bundle import Bundle


def predict(bundle: Bundle, features: pd.DataFrame) -> np.ndarray:
    """Probability of the label for each feature row, using the bundle's own feature list."""
    columns = [entry["name"] for entry in bundle.feature_schema]
    return np.asarray(bundle.estimator.predict_proba(features[columns])[:, 1], dtype="float64")


@dataclass
class ScoreReport:
    scored: int = 0
    problems: list[str] = field(default_factory=list)
