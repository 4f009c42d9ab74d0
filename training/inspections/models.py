"""The model grid: baselines beside every learner, as scikit-learn estimators on the feature frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from training.selection import Candidate

# Chicago's 2014 glm features (Schenk et al.), minus the inspector and the garbage-cart density we do
# not have: mapped onto ours.
CHICAGO_GLM_FEATURES = (
    "prev_critical",
    "prev_serious",
    "prev_failed",
    "first_inspection",
    "days_since_last",
    "years_licensed",
    "license_alcohol_on_premises",
    "license_tobacco",
    "temperature_max_mean_3d",
    "burglaries_per_km2_90d_1km",
    "sanitation_311_per_km2_90d_1km",
)


MIN_CATEGORY_COUNT = 50  # categories seen fewer times in training are pooled by the encoders


class PreviousCriticalRule(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Business-as-usual baseline: "the previous inspection had a critical violation".

    The score is the training rate of the label in each rule group (previous critical / previous clean /
    no previous inspection), so it is a calibrated probability with three levels.
    """

    def __init__(self, column: str = "prev_critical") -> None:
        self.column = column

    def _group(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.column].to_numpy(dtype="float64")
        return np.where(np.isnan(values), 2, (values > 0).astype("int64"))

    def fit(self, X: pd.DataFrame, y: Sequence[int]) -> PreviousCriticalRule:
        labels = np.asarray(y, dtype="float64")
        groups = self._group(X)
        overall = labels.mean()
        self.rates_ = np.array(
            [labels[groups == g].mean() if (groups == g).any() else overall for g in range(3)]
        )
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        positive = self.rates_[self._group(X)]
        return np.column_stack((1 - positive, positive))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")


def _linear(numeric: list[str], categorical: list[str], c: float) -> Pipeline:
    parts: list[tuple[str, Any, list[str]]] = []
    if categorical:  # a city without categorical inputs gets no (empty) encoder step
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=MIN_CATEGORY_COUNT)
        parts.append(("categorical", encoder, categorical))
    parts.append(("numeric", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric))
    columns = ColumnTransformer(parts, verbose_feature_names_out=False)
    return Pipeline([("features", columns), ("model", LogisticRegression(C=c, max_iter=5000))])


def _boosting(numeric: list[str], categorical: list[str], **params: Any) -> Pipeline:
    parts: list[tuple[str, Any, list[str]]] = []
    if categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            min_frequency=MIN_CATEGORY_COUNT,
        )
        parts.append(("categorical", encoder, categorical))
    parts.append(("numeric", "passthrough", numeric))
    columns = ColumnTransformer(parts, verbose_feature_names_out=False)
    # The encoded categories come first in the transformed matrix.
    model = HistGradientBoostingClassifier(
        categorical_features=list(range(len(categorical))) or None, random_state=0, **params
    )
    return Pipeline([("features", columns), ("model", model)])


def model_grid(feature_frame: pd.DataFrame, categorical: Sequence[str]) -> list[Candidate]:
    """Baselines first, then learners on every feature."""
    all_features = list(feature_frame.columns)
    categorical = [c for c in categorical if c in all_features]
    numeric = [c for c in all_features if c not in categorical]
    chicago = [c for c in CHICAGO_GLM_FEATURES if c in all_features]
    grid = [
        Candidate("previous_critical_rule", PreviousCriticalRule(), ["prev_critical"], baseline=True),
        Candidate("chicago_logistic", _linear(chicago, [], c=1.0), chicago, params={"C": 1.0}, baseline=True),
    ]
    for c in (0.03, 0.1):
        grid.append(
            Candidate(f"logistic_C{c:g}", _linear(numeric, categorical, c), all_features, params={"C": c})
        )
    boosting = {"learning_rate": 0.03, "max_iter": 300, "min_samples_leaf": 100}
    grid.append(
        Candidate("gradient_boosting", _boosting(numeric, categorical, **boosting), all_features, boosting)
    )
    return grid
