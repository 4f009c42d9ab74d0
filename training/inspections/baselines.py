"""The baselines a model is judged against, fitted and scored the same way wherever they are printed:
`civicrisk evaluate` (beside the bundle's own metrics) and bench/backtest.py.

- the previous-inspection rule: "the last inspection found a violation of the label's class";
- a logistic regression on the city's configured glm features (`[baselines] glm_features`; by
  default Chicago's 2014 glm features, those the city's families build).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from training.config import ConfigError
from training.evaluate import evaluate_scores
from training.inspections.config import CityConfig
from training.inspections.ingest import CityData
from training.inspections.models import CHICAGO_GLM_FEATURES, PreviousCriticalRule, _linear
from training.inspections.train import Examples, build_examples, score_frame
from training.selection import Candidate

PREVIOUS_RULE = "previous_critical_rule"


def glm_name(config: CityConfig) -> str:
    """`chicago_logistic` on Chicago's feature list (the name the README's tables use), else
    `city_logistic` on the config's own."""
    return "chicago_logistic" if config.glm_features is None else "city_logistic"


def baseline_candidates(features: pd.DataFrame, config: CityConfig) -> list[Candidate]:
    """The baselines whose inputs this city's features hold."""
    candidates = []
    if "prev_critical" in features.columns:
        candidates.append(Candidate(PREVIOUS_RULE, PreviousCriticalRule(), ["prev_critical"], baseline=True))
    if config.glm_features is not None:
        unknown = [column for column in config.glm_features if column not in features.columns]
        if unknown:
            raise ConfigError(
                config.path,
                "baselines.glm_features",
                f"{unknown} are not features this city builds; it has {list(features.columns)}",
            )
    wanted = CHICAGO_GLM_FEATURES if config.glm_features is None else config.glm_features
    glm = [column for column in wanted if column in features.columns]
    if glm:
        candidates.append(
            Candidate(glm_name(config), _linear(glm, [], c=1.0), glm, params={"C": 1.0}, baseline=True)
        )
    return candidates


def evaluate_baselines(
    data: CityData,
    until: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window: Examples | None = None,
) -> dict[str, dict[str, Any]]:
    """Each baseline fitted on the in-scope inspections up to `until` and scored on [start, end]
    (`window`: those inspections' examples as the model was scored on them, e.g. frozen history)."""
    train = build_examples(data, end=until)
    window = window if window is not None else build_examples(data, start, end)
    if len(window.labels) == 0 or len(set(train.labels)) < 2:
        return {}
    metrics = {}
    for candidate in baseline_candidates(train.features, data.config):
        model = candidate.fresh().fit(train.features[candidate.features], train.labels)
        scores = model.predict_proba(window.features[candidate.features])[:, 1]
        frame = score_frame(window.rows, window.labels, scores)
        result = evaluate_scores(frame, start.date(), end.date())
        metrics[candidate.name] = {
            key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in result.items()
        }
    return metrics
