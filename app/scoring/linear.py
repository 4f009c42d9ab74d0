"""Compile a fitted linear scikit-learn pipeline into numpy arrays for fast, exact scoring.

The committed bundles are `Pipeline([ColumnTransformer([OneHotEncoder, Pipeline([SimpleImputer,
StandardScaler])]), LogisticRegression])`. Their logit is affine in the inputs, so a record is scored
with a few vector operations on pre-computed arrays instead of pandas and the sklearn machinery, and
each feature's share of the logit is exact:

- a numeric feature j contributes coef_j * (imputed x_j - mean_j) / scale_j, plus the same term for
  its missing-value indicator column if it has one (so "is missing" is part of that feature);
- a categorical feature contributes the coefficient of its one-hot column (infrequent and unseen
  values share the "infrequent" column, as OneHotEncoder(handle_unknown="infrequent_if_exist") does).

intercept + sum(contributions) == logit, and sigmoid(logit) == estimator.predict_proba(...)[:, 1].
Anything that does not match this shape exactly is not compiled (`compile_linear` returns None) and is
served through the generic predict path instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from app.scoring.types import FeatureLayout, FloatArray, RecordBatch, RecordRows, Scored, ScoredRows


class _Coefficients(dict[str, float]):
    """value -> coefficient; a missing key answers the default without being stored, so unbounded
    client input cannot grow the table."""

    def __init__(self, table: dict[str, float], default: float) -> None:
        super().__init__(table)
        self.default = default

    def __missing__(self, key: str) -> float:
        return self.default


@dataclass(frozen=True)  # not slotted: cached_property stores the folded arrays
class CompiledLinear:
    """A logistic-regression pipeline reduced to arrays; see the module docstring for the algebra."""

    layout: FeatureLayout
    intercept: float
    fill: FloatArray  # imputer statistics per numeric feature
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    indicator_columns: np.ndarray  # positions (in layout.numeric) that have a missing indicator
    indicator_mean: FloatArray
    indicator_scale: FloatArray
    indicator_coef: FloatArray
    category_coef: tuple[dict[str, float], ...]  # value -> coefficient, per categorical feature
    category_default: tuple[float, ...]  # coefficient for values not in the map (infrequent/unseen)
    numeric_positions: np.ndarray  # column of each numeric feature in the layout's name order
    category_positions: tuple[int, ...]

    method = "exact linear contributions"

    def score(self, batch: RecordBatch) -> Scored:
        x = batch.numeric
        n, p = x.shape
        missing = np.isnan(x)
        # Numeric columns first, then categorical ones; one gather at the end puts them in the
        # layout's order. coef * (x - mean) / scale is folded into one multiply and one subtract;
        # a missing value gets the same arithmetic on its imputed value (precomputed, bit for bit).
        work = np.empty((n, p + len(batch.categorical)), dtype=np.float64)
        numeric = work[:, :p]
        np.multiply(x, self.weight, out=numeric)
        numeric -= self.offset
        np.copyto(numeric, self.filled, where=missing)
        if len(self.indicator_columns):
            columns = self.indicator_columns
            numeric[:, columns] += np.where(
                missing[:, columns], self.indicator_on_missing, self.indicator_on_present
            )
        for k, values in enumerate(batch.categorical):
            work[:, p + k] = np.fromiter(map(self._lookups[k].__getitem__, values), dtype=np.float64, count=n)
        contributions = np.take(work, self.merged_order, axis=1)
        logits = self.intercept + contributions.sum(axis=1)
        return Scored(scores=expit(logits), contributions=contributions, baseline=self.intercept)

    def score_rows(self, rows: RecordRows) -> ScoredRows:
        """`score` without numpy, for a few records (whose per-call overhead is most of the cost of
        one): each record's contributions by `_row_contributions`, the same arithmetic term by term."""
        scores: list[float] = []
        contributions: list[list[float]] = []
        for row, values in enumerate(rows.numeric):
            ordered = self._row_contributions(values, rows.categorical, row)
            contributions.append(ordered)
            scores.append(_sigmoid(self.intercept + math.fsum(ordered)))
        return ScoredRows(scores=scores, contributions=contributions, baseline=self.intercept)

    def _row_contributions(
        self, values: tuple[float | None, ...], categorical: tuple[list[str], ...], row: int
    ) -> list[float]:
        """One record's contributions in layout order: `score`'s arithmetic on the same folded
        constants (`_plain`), in the same order, so each term has `score`'s bits."""
        plain = self._plain
        merged = [
            if_missing if x is None or x != x else x * weight - offset + indicator
            for x, weight, offset, indicator, if_missing in zip(values, *plain.numeric, strict=True)
        ]
        for lookup, column in zip(self._lookups, categorical, strict=True):
            merged.append(lookup[column[row]])
        return list(plain.order(merged)) if len(merged) > 1 else merged

    @cached_property
    def _lookups(self) -> tuple[_Coefficients, ...]:
        return tuple(
            _Coefficients(table, default)
            for table, default in zip(self.category_coef, self.category_default, strict=True)
        )

    @cached_property
    def weight(self) -> FloatArray:
        weight: FloatArray = self.coef / self.scale
        return weight

    @cached_property
    def offset(self) -> FloatArray:
        offset: FloatArray = self.mean * self.weight
        return offset

    @cached_property
    def filled(self) -> FloatArray:
        """The contribution of a missing value: its imputed value through the same arithmetic."""
        filled: FloatArray = self.fill * self.weight - self.offset
        return filled

    @cached_property
    def indicator_on_missing(self) -> FloatArray:
        """What a missing-value indicator adds when it is 1 ((1 - mean) / scale * coef, folded)."""
        weight = self.indicator_coef / self.indicator_scale
        on_missing: FloatArray = 1.0 * weight - self.indicator_mean * weight
        return on_missing

    @cached_property
    def indicator_on_present(self) -> FloatArray:
        weight = self.indicator_coef / self.indicator_scale
        on_present: FloatArray = 0.0 * weight - self.indicator_mean * weight
        return on_present

    @cached_property
    def merged_order(self) -> np.ndarray:
        """For each feature in layout order, its column among (numeric..., categorical...)."""
        merged = [*self.numeric_positions.tolist(), *self.category_positions]
        order = np.empty(len(merged), dtype=np.intp)
        order[merged] = np.arange(len(merged))
        return order

    @cached_property
    def _plain(self) -> _PlainTables:
        # Indicator addends are folded in per column (0.0 where a column has none: adding it leaves
        # the value unchanged), in the order `score` applies them, so each term is bit-identical.
        on_present = np.zeros(len(self.layout.numeric))
        on_missing = np.zeros(len(self.layout.numeric))
        on_present[self.indicator_columns] = self.indicator_on_present
        on_missing[self.indicator_columns] = self.indicator_on_missing
        return _PlainTables(
            numeric=(
                self.weight.tolist(),
                self.offset.tolist(),
                on_present.tolist(),
                (self.filled + on_missing).tolist(),
            ),
            order=itemgetter(*self.merged_order.tolist()),
        )


@dataclass(frozen=True, slots=True)
class _PlainTables:
    """CompiledLinear's arrays as Python lists, for `score_rows`."""

    # Per numeric column: weight, offset, indicator addend when present, contribution when missing.
    numeric: tuple[list[float], list[float], list[float], list[float]]
    order: Callable[[list[float]], Any]  # (numeric..., categorical...) -> layout order


def _sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    small = math.exp(logit)  # exp(-logit) would overflow for very negative logits
    return small / (1.0 + small)


def _one_hot_coefficients(
    encoder: OneHotEncoder, coef: FloatArray
) -> tuple[tuple[dict[str, float], ...], tuple[float, ...]] | None:
    if encoder.drop_idx_ is not None or encoder.handle_unknown not in ("infrequent_if_exist", "ignore"):
        return None
    infrequent = getattr(encoder, "infrequent_categories_", [None] * len(encoder.categories_))
    maps: list[dict[str, float]] = []
    defaults: list[float] = []
    position = 0
    for categories, rare in zip(encoder.categories_, infrequent, strict=True):
        rare_set = set() if rare is None else {str(value) for value in rare}
        mapping: dict[str, float] = {}
        for value in categories:
            if str(value) not in rare_set:
                mapping[str(value)] = float(coef[position])
                position += 1
        if rare_set and encoder.handle_unknown == "infrequent_if_exist":
            defaults.append(float(coef[position]))
            position += 1
        else:
            defaults.append(0.0)  # "ignore": an unseen value is all zeros
            position += len(rare_set)
        maps.append(mapping)
    if position != len(coef):
        return None
    return tuple(maps), tuple(defaults)


def compile_linear(estimator: Any, layout: FeatureLayout) -> CompiledLinear | None:
    """Arrays equivalent to `estimator`, or None when it is not a supported linear shape: the
    ColumnTransformer pipeline above, or (numbers only, as the lead model) SimpleImputer ->
    StandardScaler -> LogisticRegression in one Pipeline."""
    if not isinstance(estimator, Pipeline):
        return None
    parts = [step for _, step in estimator.steps]
    model = parts[-1]
    if not (isinstance(model, LogisticRegression) and model.coef_.shape[0] == 1):
        return None
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    encoder: OneHotEncoder | None = None
    slices: dict[str, slice] = {"numeric": slice(0, len(coef))}
    if len(parts) == 3 and not layout.categorical:
        steps = parts[:2]
    elif len(parts) == 2 and isinstance(parts[0], ColumnTransformer) and not parts[0].sparse_output_:
        columns = parts[0]
        numeric_pipe: Pipeline | None = None
        for name, transformer, cols in columns.transformers_:
            if name == "remainder" and transformer == "drop":
                continue
            if isinstance(transformer, OneHotEncoder) and list(cols) == list(layout.categorical):
                encoder = transformer
            elif isinstance(transformer, Pipeline) and list(cols) == list(layout.numeric):
                numeric_pipe = transformer
            else:
                return None
            slices["categorical" if transformer is encoder else "numeric"] = columns.output_indices_[name]
        if numeric_pipe is None or (layout.categorical and encoder is None):
            return None
        steps = [step for _, step in numeric_pipe.steps]
    else:
        return None
    if not (len(steps) == 2 and isinstance(steps[0], SimpleImputer) and isinstance(steps[1], StandardScaler)):
        return None
    imputer, scaler = steps
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    # An all-missing training column is dropped by the imputer; that shape is not compiled.
    if fill.shape[0] != len(layout.numeric) or np.isnan(fill).any():
        return None
    indicator = imputer.indicator_
    indicator_columns = (
        np.asarray(indicator.features_, dtype=np.intp) if indicator is not None else np.array([], np.intp)
    )
    width = len(layout.numeric) + len(indicator_columns)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(width)
    scale = scaler.scale_ if scaler.with_std else np.ones(width)
    numeric_coef = coef[slices["numeric"]]
    if numeric_coef.shape[0] != width or np.asarray(mean).shape[0] != width:
        return None
    p = len(layout.numeric)
    category_coef: tuple[dict[str, float], ...] = ()
    category_default: tuple[float, ...] = ()
    if encoder is not None:
        one_hot = _one_hot_coefficients(encoder, coef[slices["categorical"]])
        if one_hot is None:
            return None
        category_coef, category_default = one_hot
    position = {name: i for i, name in enumerate(layout.names)}
    return CompiledLinear(
        layout=layout,
        intercept=float(model.intercept_[0]),
        fill=fill,
        mean=np.asarray(mean[:p], dtype=np.float64),
        scale=np.asarray(scale[:p], dtype=np.float64),
        coef=numeric_coef[:p].copy(),
        indicator_columns=indicator_columns,
        indicator_mean=np.asarray(mean[p:], dtype=np.float64),
        indicator_scale=np.asarray(scale[p:], dtype=np.float64),
        indicator_coef=numeric_coef[p:].copy(),
        category_coef=category_coef,
        category_default=category_default,
        numeric_positions=np.array([position[name] for name in layout.numeric], dtype=np.intp),
        category_positions=tuple(position[name] for name in layout.categorical),
    )
