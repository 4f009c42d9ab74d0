"""One child's score and exact per-feature contributions from an all-numeric linear pipeline.

The lead bundle's estimator is `SimpleImputer(add_indicator) → StandardScaler → LogisticRegression`
on numeric features only. The service's compiled scorer (app/services/linear.py) handles the
ColumnTransformer shape of the inspection model, so this shape fell back to the generic scorer, which
re-runs the estimator once per feature (~30 ms a child). Here the pipeline is folded into arrays:
logit = intercept + Σ contributions, each contribution coef·(x − mean)/scale for the value and its
missing-indicator, so the reasons add up to the score exactly. The fold is checked against the
estimator on probe rows before it is used; if it disagrees, the caller uses the model's own scorer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FloatArray = npt.NDArray[np.float64]
SELF_CHECK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NumericLinear:
    """The folded pipeline as Python lists: one child's ~20 values are scored faster term by term
    than through numpy, whose per-call cost is larger than the arithmetic."""

    names: tuple[str, ...]
    intercept: float
    weight: list[float]  # coef / scale of each value column
    present_offset: list[float]  # what a present value subtracts: its offset and its indicator's
    missing_contribution: list[float]  # a missing value: the imputed value's term plus its indicator's

    def score(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """Probability and per-feature contributions (logit units) for one row of len(names)."""
        contributions = [
            missing if value != value else value * weight - offset
            for value, weight, offset, missing in zip(
                x, self.weight, self.present_offset, self.missing_contribution, strict=True
            )
        ]
        logit = self.intercept + math.fsum(contributions)
        if logit >= 0:
            return 1.0 / (1.0 + math.exp(-logit)), contributions
        small = math.exp(logit)  # exp(-logit) would overflow for very negative logits
        return small / (1.0 + small), contributions


def compile_numeric_linear(estimator: Any, names: tuple[str, ...]) -> NumericLinear | None:
    """The folded pipeline, or None when `estimator` is not that shape or the fold disagrees."""
    if not (isinstance(estimator, Pipeline) and len(estimator.steps) == 3):
        return None
    imputer, scaler, model = (step for _, step in estimator.steps)
    if not (
        isinstance(imputer, SimpleImputer)
        and isinstance(scaler, StandardScaler)
        and isinstance(model, LogisticRegression)
        and model.coef_.shape[0] == 1
    ):
        return None
    p = len(names)
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if fill.shape[0] != p or np.isnan(fill).any():
        return None
    indicator_of = (
        np.asarray(imputer.indicator_.features_, dtype=np.intp)
        if imputer.indicator_ is not None
        else np.array([], dtype=np.intp)
    )
    width = p + indicator_of.size
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    mean = np.asarray(scaler.mean_ if scaler.with_mean else np.zeros(width), dtype=np.float64)
    scale = np.asarray(scaler.scale_ if scaler.with_std else np.ones(width), dtype=np.float64)
    if coef.shape[0] != width or mean.shape[0] != width:
        return None
    weight = coef / scale
    offset = weight * mean
    # Each feature's missing-indicator column (if it has one) folded into that feature's terms:
    # present, the indicator is 0 and adds -offset; missing, it is 1 and adds weight - offset.
    indicator_present = np.zeros(p)
    indicator_missing = np.zeros(p)
    indicator_present[indicator_of] = -offset[p:]
    indicator_missing[indicator_of] = weight[p:] - offset[p:]
    compiled = NumericLinear(
        names=names,
        intercept=float(model.intercept_[0]),
        weight=weight[:p].tolist(),
        present_offset=(offset[:p] - indicator_present).tolist(),
        missing_contribution=(fill * weight[:p] - offset[:p] + indicator_missing).tolist(),
    )
    return compiled if _agrees(compiled, estimator, fill) else None


def _agrees(compiled: NumericLinear, estimator: Any, fill: FloatArray) -> bool:
    rng = np.random.default_rng(0)
    probe = fill * rng.uniform(0.0, 2.0, (8, len(compiled.names)))
    probe[rng.uniform(size=probe.shape) < 0.3] = np.nan  # exercise the imputer and its indicators
    expected = estimator.predict_proba(pd.DataFrame(probe, columns=list(compiled.names)))[:, 1]
    got = np.asarray([compiled.score(row.tolist())[0] for row in probe])
    return bool(np.max(np.abs(got - expected)) <= SELF_CHECK_TOLERANCE)
