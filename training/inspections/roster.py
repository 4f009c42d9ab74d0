"""The daily roster: establishments in scope on a date, with their features as of that date."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.inspections.features import build_features
from training.inspections.frame_memo import remembered
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


@dataclass(frozen=True)
class OutcomeOrder:
    """A city's inspections with an outcome, a date and an establishment, in the order that makes an
    establishment's latest inspection its last row (date, then inspection id, then file order)."""

    dates: np.ndarray  # datetime64, ascending
    positions: np.ndarray  # each row's position in the inspections frame
    establishment_ids: np.ndarray  # object (str)
    codes: np.ndarray  # the establishment as an integer code


def _outcome_order(inspections: pd.DataFrame) -> OutcomeOrder:
    # Chosen on the three key columns: sorting the whole frame (violation texts included) was most of
    # a daily list's roster time; and once per city's data, not per date.
    keep = (
        inspections["has_outcome"].to_numpy(dtype=bool)
        & inspections["date"].notna().to_numpy()
        & inspections["establishment_id"].notna().to_numpy()  # as groupby would: no id, no roster row
    )
    keys = inspections.loc[keep, ["date", "inspection_id", "establishment_id"]].reset_index(drop=True)
    keys["position"] = np.flatnonzero(keep)
    keys = keys.sort_values(["date", "inspection_id"], kind="stable")
    ids = keys["establishment_id"].to_numpy(dtype=object)
    return OutcomeOrder(
        dates=keys["date"].to_numpy(),
        positions=keys["position"].to_numpy(dtype=np.int64),
        establishment_ids=ids,
        codes=pd.factorize(ids)[0],
    )


def establishments_in_scope(data: CityData, date: pd.Timestamp) -> pd.DataFrame:
    """Establishments inspected within the config's window before `date` (and licensed on it, if asked).

    Descriptive fields come from each establishment's latest inspection before `date`, so the roster
    for a past date is the one that could have been drawn up that morning.
    """
    config = data.config
    inspections = data.inspections
    order = remembered(inspections, "roster order", lambda: _outcome_order(inspections))
    # The outcomes dated before `date` are a prefix of that order; each establishment's latest is
    # its last row in the prefix.
    before = int(np.searchsorted(order.dates, date.to_datetime64(), side="left"))
    _, first_from_end = np.unique(order.codes[:before][::-1], return_index=True)
    latest = np.sort(before - 1 - first_from_end)
    oldest = (date - pd.Timedelta(days=config.roster_inspected_within_days)).to_datetime64()
    latest = latest[order.dates[latest] >= oldest]
    latest_keys = pd.DataFrame(
        {"establishment_id": order.establishment_ids[latest], "position": order.positions[latest]}
    )
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
