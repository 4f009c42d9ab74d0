"""Use a verified bundle: backtest it on a window, or score upcoming inspections from a CSV."""

from __future__ import annotations

import dataclasses
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from training.bundle import load_bundle
from training.config import ConfigError
from training.evaluate import evaluate_scores
from training.inspections.baselines import evaluate_baselines
from training.inspections.config import CityConfig, load_city_config
from training.inspections.features import build_features
from training.inspections.history_view import HISTORY_MODES, HistoryMode, history_as_of
from training.inspections.ingest import CityData, canonical_inspections, load_city, read_table
from training.inspections.train import Examples, build_examples, score_frame
from training.scoring import ScoreReport, predict

REQUIRED_FOR_SCORING = ("inspection_id", "establishment_id", "date")


def window_examples(
    data: CityData,
    start: date,
    end: date,
    history: HistoryMode = "refreshed",
    history_until: date | None = None,
) -> Examples:
    """In-scope inspections dated in [start, end] with the features of the world `history` names.

    "refreshed": each inspection sees all data before its own date; "frozen": the data cut at
    `history_until` (default `start`), see training/inspections/history_view.py.
    """
    if history not in HISTORY_MODES:
        raise ValueError(f"history must be one of {list(HISTORY_MODES)}, got {history!r}")
    if history_until is not None and history != "frozen":
        raise ValueError("history_until applies to frozen history only")
    window = build_examples(data, pd.Timestamp(start), pd.Timestamp(end))
    if len(window.labels) == 0:
        raise ValueError(f"no in-scope inspections with outcomes between {start} and {end}")
    if history == "refreshed":
        return window
    cut = history_until or start
    if cut > start:
        raise ValueError(f"history_until {cut} is after the window's first day {start}")
    visible = history_as_of(data, pd.Timestamp(cut))
    return Examples(window.rows, build_features(window.rows, visible), window.labels)


def repeated_ids_in(data: CityData, start: date, end: date) -> int:
    """Rows dated in [start, end] set aside at reading because their inspection id was repeated."""
    days = data.repeated_id_dates.dt.normalize()
    return int(((days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))).sum())


def evaluate_bundle(
    config_path: Path,
    bundle_path: Path,
    start: date,
    end: date,
    history: HistoryMode = "refreshed",
    history_until: date | None = None,
) -> dict[str, Any]:
    """Backtest a bundle on the in-scope inspections dated in [start, end], beside the baselines
    (training/inspections/baselines.py) fitted on the same data up to the bundle's training end and
    scored on the same window, in the same world.

    `history` and `history_until` say which world is measured (see `window_examples`). Rows of the
    window set aside at reading because their inspection id repeated an earlier one are counted in
    `repeated_ids`, so no row leaves the evaluation silently.
    """
    config = load_city_config(config_path)
    bundle = load_bundle(bundle_path)
    data = load_city(config)
    examples = window_examples(data, start, end, history, history_until)
    trained_until = date.fromisoformat(bundle.manifest["data"]["trained_until"])
    if start <= trained_until:
        print(
            f"civicrisk: warning: the window starts on or before the bundle's training end ({trained_until});"
            " these metrics include training data and are not a validation",
            file=sys.stderr,
        )
    frame = score_frame(examples.rows, examples.labels, predict(bundle, examples.features))
    metrics: dict[str, Any] = dict(evaluate_scores(frame, start, end))
    metrics["model"] = bundle.manifest["name"]
    metrics["version"] = bundle.manifest["version"]
    metrics["trained_until"] = trained_until.isoformat()
    metrics["out_of_sample"] = start > trained_until
    metrics["history"] = history
    metrics["history_until"] = (history_until or start).isoformat() if history == "frozen" else None
    metrics["repeated_ids"] = repeated_ids_in(data, start, end)
    # Fitted on the same examples up to the bundle's training end, scored on the same window's
    # features (frozen ones in the frozen world), so the rows compare.
    baselines = evaluate_baselines(
        data, pd.Timestamp(trained_until), pd.Timestamp(start), pd.Timestamp(end), window=examples
    )
    metrics["baselines"] = baselines
    _print_beside(metrics, baselines)
    return metrics


def _print_beside(metrics: dict[str, Any], baselines: dict[str, dict[str, Any]]) -> None:
    """The model and its baselines as a small table on stderr (stdout stays one JSON line)."""
    columns = ("auc", "precision_at_10", "recall_at_10", "days_earlier")
    rows = [(f"{metrics['model']} (this bundle)", metrics)] + list(baselines.items())
    print(f"{'model':<44}" + "".join(f"{c:>17}" for c in columns), file=sys.stderr)
    for name, values in rows:
        cells = "".join(f"{_cell(values.get(c)):>17}" for c in columns)
        print(f"{name:<44}{cells}", file=sys.stderr)


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else str(value)


def _row_problems(frame: pd.DataFrame, raw: pd.DataFrame, config: CityConfig) -> pd.Series:
    """A problem description per bad input row (empty string for a good row)."""
    problems = pd.Series("", index=frame.index, dtype="object")
    for name in ("inspection_id", "establishment_id"):
        missing = frame[name].isna() | (frame[name] == "")
        problems[missing] += f"missing {config.columns.get(name, 'inspection key')!r}; "
    raw_date = raw[config.columns["date"]]
    bad_date = frame["date"].isna()
    problems[bad_date] += (
        f"bad {config.columns['date']!r} "
        + raw_date[bad_date].astype("string").fillna("(blank)").map(repr)
        + f" (expected {config.inspections.date_format}); "
    )
    return problems.str.rstrip("; ")


def read_upcoming(path: Path, config: CityConfig) -> pd.DataFrame:
    """Read upcoming inspections in the city's own schema; result and violation columns may be absent."""
    source = config.inspections.__class__(
        path=path, date_format=config.inspections.date_format, key="--input"
    )
    required = {
        f"--input column for {name}": config.columns[name]
        for name in REQUIRED_FOR_SCORING
        if name in config.columns
    }
    required |= {f"--input column for inspections.key[{i}]": c for i, c in enumerate(config.inspection_key)}
    return read_table(source, required)


def _upcoming_config(config: CityConfig) -> CityConfig:
    """Upcoming inspections have no violations yet: one row each, even in a row-per-violation city."""
    columns = {k: v for k, v in config.columns.items() if k not in ("violation_code", "violation_flag")}
    return dataclasses.replace(config, columns=columns)


def score_file(config_path: Path, bundle_path: Path, input_path: Path, output_path: Path) -> ScoreReport:
    """Score every valid row of `input_path`, write id, score and rank; report bad rows by line number."""
    config = load_city_config(config_path)
    bundle = load_bundle(bundle_path)
    if not input_path.is_file():
        raise ConfigError(input_path, "--input", "file not found")
    raw = read_upcoming(input_path, config)
    frame = canonical_inspections(raw, _upcoming_config(config))
    problems = _row_problems(frame, raw, config)
    report = ScoreReport()
    for index in problems.index[problems != ""]:
        report.problems.append(f"line {index + 2}: {problems[index]}")  # +1 header, +1 one-based
    good = frame[problems == ""]
    id_column = config.columns.get("inspection_id", "inspection_key")
    if good.empty:
        pd.DataFrame(columns=[id_column, "score", "rank"]).to_csv(output_path, index=False)
        return report
    data: CityData = load_city(config)
    scores = predict(bundle, build_features(good, data))
    out = pd.DataFrame({id_column: good["inspection_id"].to_numpy(), "score": scores})
    # Rank 1 is the highest score; ties go to the earlier row of the input.
    out["rank"] = out["score"].rank(method="first", ascending=False).astype("int64")
    out.sort_values("rank").to_csv(output_path, index=False)
    report.scored = len(out)
    return report
