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
    names: tuple[str, ...]
    intercept: float
    fill: FloatArray
    weight: FloatArray  # coef / scale for each value column
    offset: FloatArray  # coef * mean / scale for each value column
    indicator_of: npt.NDArray[np.intp]  # feature index of each missing-indicator column
    indicator_weight: FloatArray
    indicator_offset: FloatArray

    def score(self, x: FloatArray) -> tuple[float, FloatArray]:
        """Probability and per-feature contributions (logit units) for one row of len(names)."""
        missing = np.isnan(x)
        contributions = np.where(missing, self.fill, x) * self.weight - self.offset
        if self.indicator_of.size:
            flags = missing[self.indicator_of].astype(np.float64)
            np.add.at(contributions, self.indicator_of, flags * self.indicator_weight - self.indicator_offset)
        logit = self.intercept + float(contributions.sum())
        return 1.0 / (1.0 + math.exp(-logit)), contributions


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
    compiled = NumericLinear(
        names=names,
        intercept=float(model.intercept_[0]),
        fill=fill,
        weight=weight[:p],
        offset=(weight * mean)[:p],
        indicator_of=indicator_of,
        indicator_weight=weight[p:],
        indicator_offset=(weight * mean)[p:],
    )
    return compiled if _agrees(compiled, estimator) else None


def _agrees(compiled: NumericLinear, estimator: Any) -> bool:
    rng = np.random.default_rng(0)
    probe = compiled.fill * rng.uniform(0.0, 2.0, (8, len(compiled.names)))
    probe[rng.uniform(size=probe.shape) < 0.3] = np.nan  # exercise the imputer and its indicators
    expected = estimator.predict_proba(pd.DataFrame(probe, columns=list(compiled.names)))[:, 1]
    got = np.asarray([compiled.score(row)[0] for row in probe])
    return bool(np.max(np.abs(got - expected)) <= SELF_CHECK_TOLERANCE)
