"""Variants tried for issue #21 beside the selected model, on bench/rolling_origin.py's Chicago windows:
a cyclic month (season) and a rank average of logistic regression and gradient boosting. Prints each
variant's per-window AUC and days earlier and the means (bench/README.md, "Tried and not accepted").

    .venv/bin/python bench/rolling_variants.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.rolling_origin import CHICAGO_WINDOWS, METRICS, MODES, prepare, summarise  # noqa: E402
from training.inspections.features import CATEGORICAL_FEATURES  # noqa: E402
from training.inspections.models import _linear, model_grid  # noqa: E402
from training.inspections.train import score_frame  # noqa: E402


def with_season(features: pd.DataFrame) -> pd.DataFrame:
    angle = 2 * np.pi * (features["month"] - 1) / 12
    return features.assign(month_sin=np.sin(angle), month_cos=np.cos(angle))


def main() -> None:
    windows = prepare(REPO / "data" / "sample" / "chicago" / "city.toml", CHICAGO_WINDOWS)
    frames: dict[str, dict[str, list[pd.DataFrame]]] = {
        name: {mode: [] for mode in MODES} for name in ("logistic_C0.1", "season", "rank_average")
    }
    for window in windows:
        grid = {c.name: c for c in model_grid(window.train.features, CATEGORICAL_FEATURES)}
        linear, boosting = grid["logistic_C0.1"], grid["gradient_boosting"]
        fitted_linear = linear.fresh().fit(window.train.features[linear.features], window.train.labels)
        fitted_boosting = boosting.fresh().fit(window.train.features[boosting.features], window.train.labels)
        seasonal = with_season(window.train.features)
        numeric = [c for c in seasonal.columns if c not in CATEGORICAL_FEATURES]
        fitted_season = _linear(numeric, list(CATEGORICAL_FEATURES), 0.1).fit(seasonal, window.train.labels)
        for mode in MODES:
            examples = window.scored[mode]
            linear_scores = fitted_linear.predict_proba(examples.features[linear.features])[:, 1]
            boosting_scores = fitted_boosting.predict_proba(examples.features[boosting.features])[:, 1]
            season_scores = fitted_season.predict_proba(
                with_season(examples.features)[list(seasonal.columns)]
            )
            average = (rankdata(linear_scores) + rankdata(boosting_scores)) / len(linear_scores)
            for name, scores in (
                ("logistic_C0.1", linear_scores),
                ("season", season_scores[:, 1]),
                ("rank_average", average),
            ):
                frames[name][mode].append(score_frame(examples.rows, examples.labels, scores))
    for name, by_mode in frames.items():
        for mode in MODES:
            summary = summarise(by_mode[mode], windows)
            per_window = summary["windows"]
            mean = summary["mean"]
            assert isinstance(per_window, list) and isinstance(mean, dict)
            aucs = [round(float(m["auc"]), 3) for m in per_window]
            days = [round(float(m["days_earlier"]), 2) for m in per_window]
            print(name, mode, aucs, days, {m: round(mean[m], 3) for m in METRICS}, flush=True)


if __name__ == "__main__":
    main()
