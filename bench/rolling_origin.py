"""Rolling-origin comparison of inspection models, in both history worlds, with bootstrap intervals.

For each window (trained until U, evaluated on the two months after U): every named candidate is fitted
on the in-scope examples dated up to U (features refreshed, as training always sees them) and scored
on the window twice: history refreshed (each inspection sees everything before its own date) and
history frozen at the window's first day (training/inspections/history_view.py). Per metric: each
window's value, the mean over windows, and a 95% percentile bootstrap interval of that mean
(inspections resampled with replacement inside each window, the same draws for every candidate).

    .venv/bin/python bench/rolling_origin.py                        # Chicago, every grid learner
    .venv/bin/python bench/rolling_origin.py --city data/sample/boston/city.toml --candidate gradient_boosting

This is how a change to the features or the model grid is judged (bench/README.md), never by one window.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.evaluate import evaluate_scores  # noqa: E402
from training.inspections.config import load_city_config  # noqa: E402
from training.inspections.features import CATEGORICAL_FEATURES  # noqa: E402
from training.inspections.ingest import load_city  # noqa: E402
from training.inspections.models import model_grid  # noqa: E402
from training.inspections.scoring import window_examples  # noqa: E402
from training.inspections.train import Examples, build_examples, score_frame  # noqa: E402

# (trained until, window start, window end): two-month windows, as Chicago's 2014 pilot. Chicago's
# sample data ends on 2014-08-29; nothing later is ever read (the issue author's kept hold-out).
CHICAGO_WINDOWS = (
    ("2014-02-28", "2014-03-01", "2014-04-30"),
    ("2014-04-30", "2014-05-01", "2014-06-30"),
    ("2014-06-30", "2014-07-01", "2014-08-29"),
)
BOSTON_WINDOWS = (
    ("2013-02-28", "2013-03-01", "2013-04-30"),
    ("2013-06-30", "2013-07-01", "2013-08-31"),
    ("2013-10-31", "2013-11-01", "2013-12-31"),
)
METRICS = ("auc", "days_earlier", "first_half_share_model", "first_half_share_actual", "precision_at_10")
MODES = ("refreshed", "frozen")
BOOTSTRAP_DRAWS = 400


@dataclass(frozen=True)
class Window:
    until: str
    start: str
    end: str
    train: Examples
    scored: dict[str, Examples]  # by history mode


def prepare(city: Path, windows: tuple[tuple[str, str, str], ...]) -> list[Window]:
    data = load_city(load_city_config(city))
    everything = build_examples(data, end=pd.Timestamp(windows[-1][0]))
    prepared = []
    for until, start, end in windows:
        keep = (everything.rows["date"] <= pd.Timestamp(until)).to_numpy()
        train = Examples(
            everything.rows[keep].reset_index(drop=True),
            everything.features[keep].reset_index(drop=True),
            everything.labels[keep],
        )
        first, last = pd.Timestamp(start).date(), pd.Timestamp(end).date()
        scored = {mode: window_examples(data, first, last, mode) for mode in MODES}  # type: ignore[arg-type]
        prepared.append(Window(until, start, end, train, scored))
    return prepared


def frames_for(candidate_name: str, windows: list[Window]) -> dict[str, list[pd.DataFrame]]:
    """Score frames of one candidate, per mode, one per window."""
    frames: dict[str, list[pd.DataFrame]] = {mode: [] for mode in MODES}
    for window in windows:
        grid = {c.name: c for c in model_grid(window.train.features, CATEGORICAL_FEATURES)}
        candidate = grid[candidate_name]
        model = candidate.fresh().fit(window.train.features[candidate.features], window.train.labels)
        for mode in MODES:
            examples = window.scored[mode]
            scores = model.predict_proba(examples.features[candidate.features])[:, 1]
            frames[mode].append(score_frame(examples.rows, examples.labels, scores))
    return frames


def summarise(frames: list[pd.DataFrame], windows: list[Window], seed: int = 0) -> dict[str, object]:
    """Each window's metrics, their mean over windows and a bootstrap 95% interval of the mean."""
    per_window = [
        evaluate_scores(frame, pd.Timestamp(w.start).date(), pd.Timestamp(w.end).date())
        for frame, w in zip(frames, windows, strict=True)
    ]
    rng = np.random.default_rng(seed)
    draws = {metric: [] for metric in METRICS}  # type: dict[str, list[float]]
    for _ in range(BOOTSTRAP_DRAWS):
        sample = []
        for frame, w in zip(frames, windows, strict=True):
            rows = frame.iloc[rng.integers(0, len(frame), len(frame))].reset_index(drop=True)
            sample.append(evaluate_scores(rows, pd.Timestamp(w.start).date(), pd.Timestamp(w.end).date()))
        for metric in METRICS:
            draws[metric].append(float(np.mean([float(m[metric]) for m in sample])))
    mean = {metric: float(np.mean([float(m[metric]) for m in per_window])) for metric in METRICS}
    interval = {metric: tuple(np.percentile(draws[metric], [2.5, 97.5])) for metric in METRICS}
    return {"windows": per_window, "mean": mean, "interval": interval}


def table(name: str, mode: str, summary: dict[str, object], windows: list[Window]) -> list[str]:
    lines = []
    per_window = summary["windows"]
    assert isinstance(per_window, list)
    for metrics, w in zip(per_window, windows, strict=True):
        cells = [f"{float(metrics[m]):.3f}" for m in METRICS]
        lines.append(f"| {name} | {mode} | {w.start} .. {w.end} (to {w.until}) | " + " | ".join(cells) + " |")
    mean, interval = summary["mean"], summary["interval"]
    assert isinstance(mean, dict) and isinstance(interval, dict)
    cells = [f"**{mean[m]:.3f}** [{interval[m][0]:.3f}, {interval[m][1]:.3f}]" for m in METRICS]
    lines.append(
        f"| {name} | {mode} | **mean of {len(windows)}** [95% bootstrap] | " + " | ".join(cells) + " |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=REPO / "data" / "sample" / "chicago" / "city.toml")
    parser.add_argument("--candidate", action="append", default=[], help="grid candidate name (repeatable)")
    args = parser.parse_args()
    windows_spec = BOSTON_WINDOWS if "boston" in args.city.parts else CHICAGO_WINDOWS
    started = time.perf_counter()
    windows = prepare(args.city, windows_spec)
    names = args.candidate or [c.name for c in model_grid(windows[0].train.features, CATEGORICAL_FEATURES)]
    header = "| model | history | window | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (3 + len(METRICS))]
    for name in names:
        frames = frames_for(name, windows)
        for mode in MODES:
            lines += table(name, mode, summarise(frames[mode], windows), windows)
        print(f"done {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print("\n".join(lines))
    print(f"\nmachine: {platform.machine()}, python {platform.python_version()}; {BOOTSTRAP_DRAWS} draws")


if __name__ == "__main__":
    main()
