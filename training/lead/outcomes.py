"""Blood-test records (a city's file, or the synthetic stand-in) → canonical tests and labelled children.

A child is an example once, at an as-of date (birth plus a seeded age from the config). Its label is a
test >= threshold after the as-of date and before the third birthday. Children with such a test on or
before the as-of date are already known and left out; so are children with no test in the window,
whose outcome was never observed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.config import ConfigError
from training.lead.cohort import generate_cohort
from training.lead.config import LeadConfig
from training.lead.reference import Reference


@dataclass(frozen=True)
class Outcomes:
    """Canonical tests: child_id, birth_date, test_date, result, latitude, longitude, audit_group."""

    tests: pd.DataFrame
    source: str  # "synthetic (seed N)" or the file name
    dropped: dict[str, int]  # rows left out, by reason
    # The synthetic cohort's fit to the real area series, by year (empty for a city's own records).
    calibration: list[dict[str, Any]] = field(default_factory=list)


def read_outcome_table(
    config: LeadConfig, reference: Reference, known_until: int | None = None
) -> tuple[pd.DataFrame, str, list[dict[str, Any]]]:
    """The raw records in the city's own column names: the configured file, or the generator's output
    (whose area pattern follows real area outcomes up to `known_until`), and the generator's fit."""
    if config.outcome_file is not None:
        wanted = set(config.outcome_columns.values())
        table = pd.read_csv(config.outcome_file, dtype="string", usecols=lambda c: c in wanted)
        missing = sorted(wanted - set(table.columns))
        if missing:
            raise ConfigError(
                config.outcome_file, "outcomes.columns", f"column {missing[0]!r} not in the file"
            )
        return table, config.outcome_file.name, []
    assert config.synthetic is not None  # the config guarantees one source
    cohort = generate_cohort(config.synthetic, reference, known_until)
    return cohort.tests.astype("string"), f"synthetic (seed {config.synthetic.seed})", cohort.calibration


def locate_rows(frame: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Fill missing coordinates from `address` (offline resolver); add tract and community_area.

    `frame` has latitude, longitude and optionally address. Adds `location_problem`: "" when placed,
    "address not found" / "outside service area" / "no location" otherwise.
    """
    frame = frame.copy()
    problem = pd.Series("", index=frame.index, dtype="object")
    no_point = frame["latitude"].isna() | frame["longitude"].isna()
    if "address" in frame.columns:
        to_resolve = no_point & frame["address"].notna()
        if to_resolve.any():
            resolved = reference.addresses().resolve_many(frame.loc[to_resolve, "address"])
            frame.loc[to_resolve, ["latitude", "longitude"]] = resolved[["latitude", "longitude"]].to_numpy()
            problem[resolved.index[resolved["latitude"].isna()]] = "address not found"
    still = frame["latitude"].isna() | frame["longitude"].isna()
    problem[still & (problem == "")] = "no location"
    place = reference.geo.locate_many(frame["latitude"], frame["longitude"])
    frame["tract"] = place["tract"].to_numpy()
    frame["community_area"] = place["community_area"].to_numpy()
    problem[~still & frame["community_area"].isna().to_numpy()] = "outside service area"
    frame["location_problem"] = problem
    return frame


def load_outcomes(config: LeadConfig, reference: Reference, known_until: int | None = None) -> Outcomes:
    """Canonical tests with valid dates and results, placed in the city (bad rows counted, not fatal)."""
    raw, source, calibration = read_outcome_table(config, reference, known_until)
    columns = config.outcome_columns
    tests = pd.DataFrame(index=raw.index)
    for name in ("birth_date", "test_date"):
        tests[name] = pd.to_datetime(raw[columns[name]], format=config.outcome_date_format, errors="coerce")
    tests["child_id"] = raw[columns["child_id"]].astype("string").str.strip()
    tests["result"] = pd.to_numeric(raw[columns["result"]], errors="coerce")
    for name in ("latitude", "longitude"):
        tests[name] = pd.to_numeric(raw[columns[name]], errors="coerce") if name in columns else np.nan
    if "address" in columns:
        tests["address"] = raw[columns["address"]]
    tests["audit_group"] = raw[columns["audit_group"]] if "audit_group" in columns else pd.NA

    dropped: dict[str, int] = {}
    bad = tests[["birth_date", "test_date", "result"]].isna().any(axis=1) | tests["child_id"].isna()
    bad |= tests["test_date"] < tests["birth_date"]
    dropped["missing or impossible date, result or id"] = int(bad.sum())
    tests = locate_rows(tests[~bad], reference)
    for reason, count in tests["location_problem"].value_counts().items():
        if reason:
            dropped[str(reason)] = int(count)
    tests = tests[tests["location_problem"] == ""].drop(columns=["location_problem"])
    tests = tests.sort_values(["test_date", "child_id"], kind="stable").reset_index(drop=True)
    return Outcomes(tests=tests, source=source, dropped=dropped, calibration=calibration)


def children_from_tests(tests: pd.DataFrame) -> pd.DataFrame:
    """One row per child: birth date, home (the place of its earliest test), audit group."""
    first = tests.sort_values(["test_date"], kind="stable").groupby("child_id", sort=True).head(1)
    columns = ["child_id", "birth_date", "latitude", "longitude", "tract", "community_area", "audit_group"]
    return first[columns].sort_values("child_id").reset_index(drop=True)


def as_of_dates(children: pd.DataFrame, config: LeadConfig) -> pd.Series:
    """Birth date plus a seeded age drawn uniformly from config.score_age_days (by child id order)."""
    rng = np.random.default_rng(config.examples_seed)
    youngest, oldest = config.score_age_days
    order = children["child_id"].argsort(kind="stable").to_numpy()
    ages = np.empty(len(children), dtype="int64")
    ages[order] = rng.integers(youngest, oldest + 1, len(children))
    return children["birth_date"] + pd.to_timedelta(ages, unit="D")


def labelled_children(tests: pd.DataFrame, config: LeadConfig, until: pd.Timestamp) -> pd.DataFrame:
    """Children whose whole outcome window closed by `until`, with as_of and label (see module doc)."""
    tests = tests[tests["test_date"] <= until]
    children = children_from_tests(tests)
    horizon = pd.Timedelta(days=config.horizon_days)
    children = children[children["birth_date"] + horizon <= until].reset_index(drop=True)
    children["as_of"] = as_of_dates(children, config)
    window = tests.merge(
        children[["child_id", "birth_date", "as_of"]], on=["child_id"], suffixes=("_test", "")
    )
    window = window[window["test_date"] < window["birth_date"] + horizon]
    elevated = window["result"] >= config.threshold
    known_before = window.loc[elevated & (window["test_date"] <= window["as_of"]), "child_id"].unique()
    after = window[window["test_date"] > window["as_of"]]
    observed = after["child_id"].unique()
    positive = after.loc[after["result"] >= config.threshold, "child_id"].unique()
    keep = children["child_id"].isin(observed) & ~children["child_id"].isin(known_before)
    children = children[keep].reset_index(drop=True)
    children["label"] = children["child_id"].isin(positive).astype("int64")
    return children


def stderr_note(outcomes: Outcomes) -> None:
    for reason, count in outcomes.dropped.items():
        if count:
            print(f"[civicrisk] left out {count} test rows: {reason}", file=sys.stderr, flush=True)
