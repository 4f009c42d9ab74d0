"""The daily roster: establishments in scope on a date, with their features as of that date."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.inspections.features import build_features
from training.inspections.ingest import CityData

ROSTER_COLUMNS = (
    "establishment_id",
    "name",
    "address",
    "zip",
    "latitude",
    "longitude",
    "facility_type",
    "risk_category",
    "last_inspection_date",
    "last_result",
)


@dataclass(frozen=True)
class Roster:
    """Who is in scope on `date` (one row each, ROSTER_COLUMNS) and their point-in-time features."""

    date: pd.Timestamp
    establishments: pd.DataFrame
    features: pd.DataFrame


def establishments_in_scope(data: CityData, date: pd.Timestamp) -> pd.DataFrame:
    """Establishments inspected within the config's window before `date` (and licensed on it, if asked).

    Descriptive fields come from each establishment's latest inspection before `date`, so the roster
    for a past date is the one that could have been drawn up that morning.
    """
    config = data.config
    history = data.inspections[data.inspections["has_outcome"] & (data.inspections["date"] < date)]
    window_start = date - pd.Timedelta(days=config.roster_inspected_within_days)
    latest = history.sort_values(["date", "inspection_id"], kind="stable").groupby("establishment_id").tail(1)
    latest = latest[latest["date"] >= window_start]
    if config.roster_require_active_license and data.licenses is not None:
        terms = data.licenses
        active = terms[(terms["term_start"] <= date) & (terms["term_end"] >= date)]
        latest = latest[latest["establishment_id"].isin(active["establishment_id"])]
    roster = latest.rename(columns={"date": "last_inspection_date", "result": "last_result"})
    for column in ROSTER_COLUMNS:
        if column not in roster.columns:
            roster[column] = pd.NA
    return roster[list(ROSTER_COLUMNS)].sort_values("establishment_id", kind="stable").reset_index(drop=True)


def build_roster(data: CityData, date: pd.Timestamp) -> Roster:
    """The roster for `date` and its features, computed from rows dated strictly before `date`."""
    establishments = establishments_in_scope(data, date)
    queries = establishments.assign(date=date)
    features = build_features(queries, data) if len(queries) else pd.DataFrame(index=queries.index)
    return Roster(date=date, establishments=establishments, features=features)
