"""How accuracy decays when outcomes stop reaching the service: the model card's decay curve.

A held-out window is scored again and again with the city's data cut earlier and earlier before it
(training/inspections/history_view.py), so each row of the curve says what a city whose outcomes
stopped flowing that many weeks before the window would have got. Beside them, the refreshed world:
each inspection scored with every outcome before its own date.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from training.evaluate import evaluate_scores
from training.inspections.features import build_features
from training.inspections.history_view import history_as_of
from training.inspections.ingest import CityData

CUT_WEEKS_BEFORE_WINDOW = (0, 2, 4, 8, 13, 26)
DECAY_METRICS = ("auc", "days_earlier", "first_half_share_model", "precision_at_10")


def decay_curve(
    model: Any,
    features: list[str],
    data: CityData,
    rows: pd.DataFrame,
    labels: Any,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> dict[str, Any]:
    """The decay curve of `model`, fitted only on examples dated before `start`, on `rows` (in-scope
    inspections dated in [start, end], with `labels`): in the refreshed world, and with the data cut
    0, 2, 4, ... weeks before `start`. Held out: no row of the window trained the model."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if rows["date"].min() < start or rows["date"].max() >= end + pd.Timedelta(days=1):
        raise ValueError(f"decay rows fall outside the window {start.date()} to {end.date()}")
    span_weeks = (end - start).days / 7.0

    def measure(visible: CityData) -> dict[str, float]:
        scores = model.predict_proba(build_features(rows, visible)[features])[:, 1]
        frame = pd.DataFrame(
            {"inspection_id": rows["inspection_id"], "date": rows["date"], "label": labels, "score": scores}
        )
        metrics = evaluate_scores(frame, start.date(), end.date())
        return {name: float(metrics[name]) for name in DECAY_METRICS}

    curve: list[dict[str, Any]] = [
        {"history": "refreshed", "weeks_since_last_outcome": "under 1"} | measure(data)
    ]
    for weeks in CUT_WEEKS_BEFORE_WINDOW:
        cut = start - pd.Timedelta(weeks=weeks)
        visible = history_as_of(data, cut)
        curve.append(
            {
                "history": f"frozen {cut.date().isoformat()}",
                "weeks_since_last_outcome": f"{weeks} to {weeks + span_weeks:.0f}",
            }
            | measure(visible)
        )
    return {
        "window_start": start.date().isoformat(),
        "window_end": end.date().isoformat(),
        "fitted_before": start.date().isoformat(),
        "n_inspections": len(rows),
        "rows": curve,
    }
