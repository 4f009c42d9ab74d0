"""The daily roster: establishments in scope on a date, with their features as of that date."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    inspections = data.inspections
    before = inspections["has_outcome"].to_numpy(dtype=bool) & (inspections["date"] < date).to_numpy()
    # The latest inspection per establishment is chosen on the three key columns alone: sorting the
    # whole frame (violation texts included) was most of a daily list's roster time.
    keys = inspections.loc[before, ["date", "inspection_id", "establishment_id"]].reset_index(drop=True)
    keys["position"] = np.flatnonzero(before)
    keys = keys[keys["establishment_id"].notna()]  # as groupby would: no establishment, no roster row
    keys = keys.sort_values(["date", "inspection_id"], kind="stable")
    latest_keys = keys[~keys["establishment_id"].duplicated(keep="last")]
    latest_keys = latest_keys[
        latest_keys["date"] >= date - pd.Timedelta(days=config.roster_inspected_within_days)
    ]
    if config.roster_require_active_license and data.licenses is not None:
        terms = data.licenses
        active = terms[(terms["term_start"] <= date) & (terms["term_end"] >= date)]
        # A set of plain strings: pandas' isin on Arrow-backed strings took 40 ms a list.
        licensed = set(active["establishment_id"].tolist())
        latest_keys = latest_keys[[each in licensed for each in latest_keys["establishment_id"].tolist()]]
    areas = [f"area_{name}" for name in config.area_filters if f"area_{name}" in inspections.columns]
    present_columns = [
        column for column in (*ROSTER_COLUMNS, *areas, "date", "result") if column in inspections.columns
    ]
    roster = inspections.iloc[
        latest_keys["position"].to_numpy(), [inspections.columns.get_loc(c) for c in present_columns]
    ]
    roster = roster.rename(columns={"date": "last_inspection_date", "result": "last_result"})
    for column in ROSTER_COLUMNS:
        if column not in roster.columns:
            roster[column] = pd.NA
    columns = [*ROSTER_COLUMNS, *areas]  # a city's [areas] columns: its daily-list filters
    return roster[columns].sort_values("establishment_id", kind="stable").reset_index(drop=True)


def build_roster(data: CityData, date: pd.Timestamp) -> Roster:
    """The roster for `date` and its features, computed from rows dated strictly before `date`."""
    establishments = establishments_in_scope(data, date)
    queries = establishments.assign(date=date)
    features = build_features(queries, data) if len(queries) else pd.DataFrame(index=queries.index)
    return Roster(date=date, establishments=establishments, features=features)
