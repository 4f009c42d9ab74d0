"""The lead model grid: the housing-age index alone as a baseline, logistic regression, a random forest.

Every candidate is a scikit-learn Pipeline on a DataFrame of its feature columns, so a bundle scores
with `estimator.predict_proba(frame[columns])` like the inspection models.
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from training.lead.features import BASELINE_FEATURE, MODEL_FEATURES
from training.selection import Candidate

# Small enough to train in seconds on two cores and to keep the pickled forest around a megabyte.
FOREST = {"n_estimators": 60, "max_depth": 8, "min_samples_leaf": 100, "max_features": 0.5}


def _logistic(c: float) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=c, max_iter=5000)),
        ]
    )


def _forest(**params: Any) -> Pipeline:
    # Trees need no scaling; the imputer's indicator columns tell them a value was missing.
    forest = RandomForestClassifier(random_state=0, n_jobs=2, **params)
    return Pipeline(
        [("impute", SimpleImputer(add_indicator=True, keep_empty_features=True)), ("model", forest)]
    )


def lead_grid() -> list[Candidate]:
    """Baseline first (its score is a calibrated function of the housing-age index alone), then learners."""
    features = list(MODEL_FEATURES)
    grid = [
        Candidate("housing_risk_index", _logistic(1.0), [BASELINE_FEATURE], params={"C": 1.0}, baseline=True),
    ]
    for c in (0.01, 1.0):
        grid.append(Candidate(f"logistic_C{c:g}", _logistic(c), features, params={"C": c}))
    grid.append(Candidate("random_forest", _forest(**FOREST), features, params=dict(FOREST)))
    return grid
