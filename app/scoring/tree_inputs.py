"""What the trees of a fitted `Pipeline([ColumnTransformer(...), HistGradientBoostingClassifier])` read:
which layout feature each of their input columns holds, and the value each known category string
(and an unseen one) reaches them as. Read once, at load time, for `tree_compiler`; None for a column
step of any other shape, which the registry then serves through the generic path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from app.scoring.trees import UNSEEN_CATEGORY
from app.scoring.types import FeatureLayout


def input_names(
    estimator: Pipeline, model: HistGradientBoostingClassifier, layout: FeatureLayout
) -> list[str] | None:
    """The layout feature in each column of the trees' input (their feature_idx), or None when the
    column step is not an OrdinalEncoder for the categories beside a passthrough for the numbers."""
    columns = estimator.steps[0][1]
    if not isinstance(columns, ColumnTransformer) or columns.sparse_output_:
        return None
    sources: dict[int, str] = {}
    for name, transformer, cols in columns.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        if isinstance(transformer, OrdinalEncoder) and list(cols) == list(layout.categorical):
            if transformer.handle_unknown != "use_encoded_value":
                return None  # "error" would refuse a request the app must answer
        elif not (_is_passthrough(transformer) and list(cols) == list(layout.numeric)):
            return None
        out = columns.output_indices_[name]
        if out.stop - out.start != len(cols):
            return None
        sources.update(zip(range(out.start, out.stop), cols, strict=True))
    width = len(sources)
    if sorted(sources) != list(range(width)) or sorted(sources.values()) != sorted(layout.names):
        return None
    # Given categorical_features, the classifier re-encodes those columns with its own fitted
    # ColumnTransformer, which moves them first: its feature_idx count columns after that step.
    inner = getattr(model, "_preprocessor", None)
    if inner is None:
        return [sources[i] for i in range(width)]
    moved: dict[int, int] = {}
    for name, _, cols in inner.transformers_:
        selected = np.arange(width)[np.asarray(cols)] if len(cols) else np.empty(0, dtype=np.intp)
        out = inner.output_indices_[name]
        if out.stop - out.start != len(selected):
            return None
        moved.update(zip(range(out.start, out.stop), selected.tolist(), strict=True))
    if sorted(moved) != list(range(width)):
        return None
    return [sources[moved[i]] for i in range(width)]


def _is_passthrough(transformer: Any) -> bool:
    # A fitted ColumnTransformer replaces "passthrough" by an identity FunctionTransformer.
    return transformer == "passthrough" or (
        isinstance(transformer, FunctionTransformer) and transformer.func is None
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def category_values_of(
    estimator: Pipeline, model: HistGradientBoostingClassifier, layout: FeatureLayout, names: list[str]
) -> dict[str, dict[str, float]] | None:
    """For each categorical feature, the value the trees receive for each known string and for
    `UNSEEN_CATEGORY`, read by running the fitted encoders: exact whatever their settings (infrequent
    categories share a code, unseen ones get unknown_value) without restating their rules here."""
    if not layout.categorical:
        return {}
    encoder = next(t for _, t, _ in estimator.steps[0][1].transformers_ if isinstance(t, OrdinalEncoder))
    known: list[list[str]] = []
    for categories in encoder.categories_:
        # A missing category (None or NaN) is never a string the app sends; any other non-string
        # category is one the app's string inputs could never reach, so that shape is not compiled.
        if not all(isinstance(value, str) or _is_missing(value) for value in categories):
            return None
        known.append([*(value for value in categories if isinstance(value, str)), UNSEEN_CATEGORY])
    rows = max(len(values) for values in known)
    # Every categorical column cycles through its known strings and the unseen one; numbers are 0.
    frame = pd.DataFrame({name: np.zeros(rows) for name in layout.names})
    for name, strings in zip(layout.categorical, known, strict=True):
        frame[name] = np.asarray([strings[i % len(strings)] for i in range(rows)], dtype=object)
    encoded = estimator[:-1].transform(frame)
    inner = getattr(model, "_preprocessor", None)
    if inner is not None:
        encoded = inner.transform(encoded)
    encoded = np.asarray(encoded, dtype=np.float64)
    values: dict[str, dict[str, float]] = {}
    for name, strings in zip(layout.categorical, known, strict=True):
        codes = encoded[:, names.index(name)]
        values[name] = {string: float(codes[i]) for i, string in enumerate(strings)}
    return values
