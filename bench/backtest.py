"""Backtest and training-time benchmark for a city's inspection model (default: Chicago's sample).

For each window: `civicrisk train --until U` (timed, as a user runs it), `civicrisk evaluate` on the
window after U, and the two baselines (fitted on the same examples up to U) on the same window.
The floor for the training time is reading the city's files into memory, measured in the same run.

    .venv/bin/python bench/backtest.py                 # Chicago: the README's two windows
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

from training.inspections.baselines import evaluate_baselines  # noqa: E402
from training.inspections.config import load_city_config  # noqa: E402
from training.inspections.ingest import load_city  # noqa: E402

WINDOWS = (
    ("2014-05-31", "2014-06-01", "2014-08-31"),  # the window
    ("2014-02-28", "2014-03-01", "2014-04-30"),  # two months, as long as Chicago's 2014 pilot window
)
BASELINES = ("previous_critical_rule", "chicago_logistic")  # the second only where its inputs exist
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


def baselines(city: Path, until: str, start: str, end: str) -> dict[str, dict[str, object]]:
    # The same baselines `civicrisk evaluate` prints (training/inspections/baselines.py).
    data = load_city(load_city_config(city))
    return dict(evaluate_baselines(data, pd.Timestamp(until), pd.Timestamp(start), pd.Timestamp(end)))


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

    rows = []
    timings = []
    with tempfile.TemporaryDirectory() as out:
        bundles: dict[str, str] = {}
        for until, start, end in windows:
            if until not in bundles:  # one training per --until date; history refreshes inside windows
                bundles[until], seconds = civicrisk(
                    "train", "--city", str(args.city), "--until", until, "--out", out
                )
                timings.append((f"--until {until}", seconds))
            bundle = bundles[until]
            line, _ = civicrisk(
                "evaluate", "--city", str(args.city), "--model", bundle, "--start", start, "--end", end
            )
            results = {
                "civicrisk ("
                + json.loads((Path(bundle) / "manifest.json").read_text())["selected_model"]["name"]
                + ")": json.loads(line)
            }
            results.update(baselines(args.city, until, start, end))
            for model, metrics in results.items():
                rows.append(
                    {
                        "window": f"{start} .. {end}",
                        "trained until": until,
                        "model": model,
                        **{key: metrics[key] for key in COLUMNS},
                        "n": metrics["n_inspections"],
                    }
                )

        _, full = civicrisk("train", "--city", str(args.city), "--out", out)
        timings.append(("all data (full run)", full))

    print(markdown(rows))
    print()
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}"
    )
    print(f"floor (read and parse every city file): {floor:.1f} s")
    for until, seconds in timings:
        print(f"civicrisk train, {until}: {seconds:.1f} s wall ({seconds / floor:.1f}x floor)")


if __name__ == "__main__":
    main()
