"""Use a verified lead bundle: backtest it on a range of births, or score a CSV of children.

Scoring never fails on a bad row: each row gets a status ("ok", "outside service area", "address not
found", or the problem with its date of birth or scoring date), and only "ok" rows get a score.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.bundle import Bundle, BundleError, load_bundle
from training.config import ConfigError, today_in
from training.lead.config import LeadConfig, load_lead_config
from training.lead.data import load_lead_data
from training.lead.features import build_features
from training.lead.metrics import ranking_metrics
from training.lead.outcomes import locate_rows
from training.lead.train import build_examples
from training.scoring import ScoreReport, predict
from training.selection import assign_tiers

OK = "ok"


def _lead_bundle(path: Path) -> Bundle:
    bundle = load_bundle(path)
    if bundle.manifest.get("task") != "lead_risk":
        raise BundleError(path, None, f"task {bundle.manifest.get('task')!r} is not a lead-risk model")
    return bundle


def evaluate_lead(config_path: Path, bundle_path: Path, start: date, end: date) -> dict[str, Any]:
    """Metrics of a bundle on the children born in [start, end] whose outcome window has closed."""
    bundle = _lead_bundle(bundle_path)
    data = load_lead_data(config_path)
    examples = build_examples(data, data.outcomes.tests["test_date"].max())
    born = examples.children["birth_date"]
    window = examples.subset((born >= pd.Timestamp(start)) & (born <= pd.Timestamp(end)))
    if len(window.labels) == 0:
        raise ValueError(f"no children born between {start} and {end} with a complete outcome window")
    last_birth = date.fromisoformat(bundle.manifest["data"]["births"][1])
    if start <= last_birth:
        print(
            f"civicrisk: warning: the window starts on or before the last training birth ({last_birth}); "
            "these metrics include training data and are not a validation",
            file=sys.stderr,
        )
    metrics = ranking_metrics(window.labels, predict(bundle, window.features))
    metrics.update(
        model=bundle.manifest["name"],
        version=bundle.manifest["version"],
        trained_until=bundle.manifest["data"]["trained_until"],
        out_of_sample=start > last_birth,
        synthetic=bool(bundle.manifest.get("synthetic")),
    )
    return metrics


def _parse_dates(raw: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(raw.str.strip(), format=fmt, errors="coerce")


def read_children(input_path: Path, config: LeadConfig, today: date) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical rows (id, birth_date, as_of, latitude, longitude, address) and a problem per row."""
    if not input_path.is_file():
        raise ConfigError(input_path, "--input", "file not found")
    raw = pd.read_csv(input_path, dtype="string", keep_default_na=False)
    columns = {name: column for name, column in config.scoring_columns.items() if column in raw.columns}
    for name in ("id", "date_of_birth"):
        if name not in columns:
            raise ConfigError(input_path, "--input", f"no {config.scoring_columns[name]!r} column")
    if "address" not in columns and not {"latitude", "longitude"} <= set(columns):
        raise ConfigError(input_path, "--input", "needs latitude and longitude columns, or an address column")
    blank = raw.apply(lambda column: column.str.strip() == "")
    raw = raw.mask(blank)
    frame = pd.DataFrame(index=raw.index)
    frame["id"] = raw[columns["id"]]
    fmt = config.scoring_date_format
    frame["birth_date"] = _parse_dates(raw[columns["date_of_birth"]], fmt)
    as_of = raw[columns["as_of"]] if "as_of" in columns else pd.Series(pd.NA, index=raw.index, dtype="string")
    frame["as_of"] = _parse_dates(as_of, fmt).fillna(pd.Timestamp(today))
    for name in ("latitude", "longitude"):
        frame[name] = pd.to_numeric(raw[columns[name]], errors="coerce") if name in columns else np.nan
    frame["address"] = raw[columns["address"]] if "address" in columns else pd.NA

    problems = pd.Series("", index=raw.index, dtype="object")
    dob_column = config.scoring_columns["date_of_birth"]
    problems[frame["id"].isna()] += f"missing {config.scoring_columns['id']!r}; "
    bad_dob = frame["birth_date"].isna()
    shown = raw[columns["date_of_birth"]].fillna("(blank)").map(repr)
    problems[bad_dob] += f"bad {dob_column!r} " + shown[bad_dob] + f" (expected {fmt}); "
    bad_as_of = as_of.notna() & _parse_dates(as_of, fmt).isna()
    problems[bad_as_of] += f"bad {config.scoring_columns.get('as_of')!r} " + as_of[bad_as_of].map(repr) + "; "
    dated = ~bad_dob & ~bad_as_of
    future = dated & (frame["birth_date"] > frame["as_of"])
    problems[future] += f"{dob_column!r} " + shown[future] + " is after the scoring date; "
    too_old = dated & (frame["as_of"] - frame["birth_date"] >= pd.Timedelta(days=config.horizon_days))
    problems[too_old] += (
        f"child is {config.horizon_days} days or older on the scoring date (model covers younger); "
    )
    return frame, problems


def score_lead(config_path: Path, bundle_path: Path, input_path: Path, output_path: Path) -> ScoreReport:
    """Score every valid child in `input_path`; write id, score, rank, tier and status for every row."""
    config = load_lead_config(config_path)
    bundle = _lead_bundle(bundle_path)
    frame, problems = read_children(input_path, config, today_in(config.timezone))
    data = load_lead_data(config_path)
    frame = locate_rows(frame, data.reference)
    placed = frame["location_problem"] != ""
    problems[placed] += frame.loc[placed, "location_problem"] + "; "
    problems = problems.str.rstrip("; ")

    report = ScoreReport()
    for index in problems.index[problems != ""]:
        report.problems.append(f"line {index + 2}: {problems[index]}")  # +1 header, +1 one-based
    good = frame[problems == ""]
    id_column = config.scoring_columns["id"]
    out = pd.DataFrame(
        {id_column: frame["id"], "score": np.nan, "rank": pd.NA, "tier": pd.NA, "status": problems}
    )
    out["rank"] = out["rank"].astype("Int64")
    out.loc[problems == "", "status"] = OK
    if not good.empty:
        features = build_features(
            good, data.outcomes.tests, data.reference, config.threshold, config.block_radius_m
        )
        scores = predict(bundle, features)
        out.loc[good.index, "score"] = scores
        # Rank 1 is the highest score; ties go to the earlier row of the input.
        out.loc[good.index, "rank"] = pd.Series(scores, index=good.index).rank(
            method="first", ascending=False
        )
        out.loc[good.index, "tier"] = assign_tiers(scores, bundle.manifest["tiers"]["cut_points"])
        report.scored = len(good)
    ordered = pd.concat([out.loc[good.index].sort_values("rank"), out.loc[problems != ""]])
    ordered.to_csv(output_path, index=False)
    return report
