"""Backtest and training-time benchmark for the inspection models, in both history worlds.

For each window: `civicrisk train --until U` (timed, as a user runs it), then `civicrisk evaluate` on the
window after U twice, `--history refreshed` (each inspection sees every outcome before its own date)
and `--history frozen` (the data cut at the window's first day), and the two baselines (fitted on the
same examples up to U) in both worlds. Then, per model and world, the mean over the windows with a 95%
bootstrap interval (bench/rolling_origin.py). The floor for the training time is reading the city's
files into memory, measured in the same run.

    .venv/bin/python bench/backtest.py        # Chicago: three 2-month windows of 2014 (the README's)
    .venv/bin/python bench/backtest.py --city data/sample/boston/city.toml --until 2012-12-31 \
        --window 2013-01-01:2013-02-28 --window 2013-03-01:2013-04-30 ...   # Boston's 2013

Prints a Markdown table (the README's backtest table) and the timings.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.rolling_origin import CHICAGO_WINDOWS, MODES, Window, summarise  # noqa: E402
from training.bundle import load_bundle  # noqa: E402
from training.evaluate import evaluate_scores  # noqa: E402
from training.inspections.baselines import baseline_candidates  # noqa: E402
from training.inspections.config import load_city_config  # noqa: E402
from training.inspections.ingest import CityData, load_city  # noqa: E402
from training.inspections.scoring import window_examples  # noqa: E402
from training.inspections.train import Examples, build_examples, score_frame  # noqa: E402
from training.scoring import predict  # noqa: E402

WINDOWS = CHICAGO_WINDOWS  # two months each, as long as Chicago's 2014 pilot window
COLUMNS = (
    "auc",
    "days_earlier",
    "first_half_share_model",
    "first_half_share_actual",
    "precision_at_10",
    "recall_at_10",
    "precision_at_20",
)


def civicrisk(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1], time.perf_counter() - started


def window_frames(
    data: CityData, bundle: Path, until: str, start: str, end: str
) -> tuple[dict[str, dict[str, pd.DataFrame]], Window]:
    """Score frames of the bundle and the baselines on one window, by model then history mode."""
    train = build_examples(data, end=pd.Timestamp(until))
    first, last = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    scored: dict[str, Examples] = {mode: window_examples(data, first, last, mode) for mode in MODES}  # type: ignore[arg-type]
    loaded = load_bundle(bundle)
    frames: dict[str, dict[str, pd.DataFrame]] = {"civicrisk": {}}
    for mode, examples in scored.items():
        scores = predict(loaded, examples.features)
        frames["civicrisk"][mode] = score_frame(examples.rows, examples.labels, scores)
    # The same baselines as `civicrisk evaluate` (training/inspections/baselines.py): the previous-
    # inspection rule and the city's configured logistic regression (Chicago's features by default).
    for candidate in baseline_candidates(train.features, data.config):
        model = candidate.fresh().fit(train.features[candidate.features], train.labels)
        frames[candidate.name] = {}
        for mode, examples in scored.items():
            scores = model.predict_proba(examples.features[candidate.features])[:, 1]
            frames[candidate.name][mode] = score_frame(examples.rows, examples.labels, scores)
    return frames, Window(until, start, end, train, scored)


def markdown(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=REPO / "data" / "sample" / "chicago" / "city.toml")
    parser.add_argument("--until", help="train once up to this date and evaluate every --window after it")
    parser.add_argument(
        "--window", action="append", default=[], metavar="START:END", help="an evaluation window (repeatable)"
    )
    args = parser.parse_args()
    windows = WINDOWS
    if args.window:
        if not args.until:
            parser.error("--window needs --until")
        windows = tuple((args.until, *window.split(":")) for window in args.window)

    started = time.perf_counter()
    load_city(load_city_config(args.city))
    floor = time.perf_counter() - started

    data = load_city(load_city_config(args.city))
    rows = []
    timings = []
    frames: dict[str, dict[str, list[pd.DataFrame]]] = {}
    prepared: list[Window] = []
    with tempfile.TemporaryDirectory() as out:
        bundles: dict[str, str] = {}
        for until, start, end in windows:
            if until not in bundles:  # one training per --until date
                bundles[until], seconds = civicrisk(
                    "train", "--city", str(args.city), "--until", until, "--out", out
                )
                timings.append((f"--until {until}", seconds))
            bundle = bundles[until]
            selected = json.loads((Path(bundle) / "manifest.json").read_text())["selected_model"]["name"]
            window_scores, window = window_frames(data, Path(bundle), until, start, end)
            prepared.append(window)
            for mode in MODES:
                line, _ = civicrisk(
                    "evaluate", "--city", str(args.city), "--model", bundle,
                    "--start", start, "--end", end, "--history", mode,
                )  # fmt: skip
                printed = json.loads(line)
                for model, by_mode in window_scores.items():
                    frames.setdefault(model, {m: [] for m in MODES})[mode].append(by_mode[mode])
                    metrics = evaluate_scores(
                        by_mode[mode], pd.Timestamp(start).date(), pd.Timestamp(end).date()
                    )
                    if model == "civicrisk":  # the command a user runs and this script agree
                        assert abs(float(metrics["auc"]) - float(printed["auc"])) < 1e-12, (metrics, printed)
                    label = f"civicrisk ({selected})" if model == "civicrisk" else model
                    rows.append(
                        {
                            "window": f"{start} .. {end}",
                            "trained until": until,
                            "history": mode,
                            "model": label,
                            **{key: metrics[key] for key in COLUMNS},
                            "n": metrics["n_inspections"],
                        }
                    )

        full_bundle, full = civicrisk("train", "--city", str(args.city), "--out", out)
        timings.append(("all data (full run)", full))
        decay = json.loads((Path(full_bundle) / "manifest.json").read_text())["decay"]

    means = []
    for model, by_mode in frames.items():
        for mode in MODES:
            summary = summarise(by_mode[mode], prepared)
            mean, interval = summary["mean"], summary["interval"]
            assert isinstance(mean, dict) and isinstance(interval, dict)
            means.append(
                {"model": model, "history": mode}
                | {
                    key: f"{mean[key]:.3f} [{interval[key][0]:.3f}, {interval[key][1]:.3f}]"
                    for key in ("auc", "days_earlier", "first_half_share_model", "first_half_share_actual")
                }
            )

    print(markdown(rows))
    print()
    print(f"mean over the {len(prepared)} windows [95% bootstrap interval]:")
    print(markdown(means))
    print()
    print(
        f"decay curve of the full run's bundle (held out: {decay['window_start']} .. {decay['window_end']},"
        f" fitted before {decay['fitted_before']}):"
    )
    print(markdown(decay["rows"]))
    print()
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}"
    )
    print(f"floor (read and parse every city file): {floor:.1f} s")
    for until, seconds in timings:
        print(f"civicrisk train, {until}: {seconds:.1f} s wall ({seconds / floor:.1f}x floor)")


if __name__ == "__main__":
    main()
