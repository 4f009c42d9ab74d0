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
    codes: np.ndarray  # the row's establishment as an integer code
    establishments: pd.Index  # each code's establishment id
    id_ranks: np.ndarray  # per code: its establishment id's place in sorted order
    next_same: np.ndarray  # per row: the next row of the same establishment (len(dates) if none)

    def latest_before(self, end: int) -> np.ndarray:
        """Each establishment's latest row among rows [0, end), ascending: the rows whose next row
        of the same establishment comes at `end` or later (one comparison a row, no sort a date)."""
        return np.flatnonzero(self.next_same[:end] >= end)


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
    codes, establishments = pd.factorize(keys["establishment_id"].to_numpy(dtype=object))
    # Python's order of the ids, which is the code-point order the roster was sorted in before.
    id_ranks = np.empty(len(establishments), dtype=np.int64)
    id_ranks[np.argsort(np.asarray(establishments, dtype=object), kind="stable")] = np.arange(
        len(establishments)
    )
    next_same = np.full(len(codes), len(codes), dtype=np.int64)
    by_establishment = np.argsort(codes, kind="stable")  # each establishment's rows, in order
    same = codes[by_establishment[1:]] == codes[by_establishment[:-1]]
    next_same[by_establishment[:-1][same]] = by_establishment[1:][same]
    return OutcomeOrder(
        dates=keys["date"].to_numpy(),
        positions=keys["position"].to_numpy(dtype=np.int64),
        codes=codes,
        establishments=pd.Index(establishments, dtype=object),
        id_ranks=id_ranks,
        next_same=next_same,
    )


@dataclass(frozen=True)
class LicenceTerms:
    """A city's licence terms as arrays, each naming its establishment by `OutcomeOrder`'s code."""

    licences: pd.DataFrame  # the frame they were read from
    starts: np.ndarray  # datetime64
    ends: np.ndarray  # datetime64 (NaT: no end known, never active, as before)
    codes: np.ndarray  # -1: an establishment with no inspection outcome

    def licensed_on(self, date: pd.Timestamp, establishments: int) -> np.ndarray:
        """Per establishment code: whether one of its licences' terms holds `date`."""
        day = date.to_datetime64()
        active = (self.starts <= day) & (self.ends >= day) & (self.codes >= 0)
        licensed = np.zeros(establishments, dtype=bool)
        licensed[self.codes[active]] = True
        return licensed


def _licence_terms(licences: pd.DataFrame, order: OutcomeOrder) -> LicenceTerms:
    return LicenceTerms(
        licences=licences,
        starts=licences["term_start"].to_numpy(dtype="datetime64[ns]"),
        ends=licences["term_end"].to_numpy(dtype="datetime64[ns]"),
        codes=order.establishments.get_indexer(licences["establishment_id"].to_numpy(dtype=object)),
    )


def establishments_in_scope(data: CityData, date: pd.Timestamp) -> pd.DataFrame:
    """Establishments inspected within the config's window before `date` (and licensed on it, if
    asked), one row each, sorted by establishment id (a daily list's last tie-break relies on it).

    Descriptive fields come from each establishment's latest inspection before `date`, so the roster
    for a past date is the one that could have been drawn up that morning.
    """
    config = data.config
    inspections = data.inspections
    order = remembered(inspections, "roster order", lambda: _outcome_order(inspections))
    # The outcomes dated before `date` are a prefix of that order; each establishment's latest is
    # its last row in the prefix.
    latest = order.latest_before(int(np.searchsorted(order.dates, date.to_datetime64(), side="left")))
    oldest = (date - pd.Timedelta(days=config.roster_inspected_within_days)).to_datetime64()
    latest = latest[order.dates[latest] >= oldest]
    licences = data.licenses
    if config.roster_require_active_license and licences is not None:
        terms = remembered(inspections, "licence terms", lambda: _licence_terms(licences, order))
        if terms.licences is not licences:  # another frame of licences beside these inspections
            terms = _licence_terms(licences, order)
        latest = latest[terms.licensed_on(date, len(order.establishments))[order.codes[latest]]]
    latest = latest[np.argsort(order.id_ranks[order.codes[latest]])]  # by establishment id
    areas = [f"area_{name}" for name in config.area_filters if f"area_{name}" in inspections.columns]
    present_columns = [
        column for column in (*ROSTER_COLUMNS, *areas, "date", "result") if column in inspections.columns
    ]
    roster = inspections.iloc[
        order.positions[latest], [inspections.columns.get_loc(c) for c in present_columns]
    ].reset_index(drop=True)
    roster = roster.rename(columns={"date": "last_inspection_date", "result": "last_result"})
    for column in ROSTER_COLUMNS:
        if column not in roster.columns:
            roster[column] = pd.NA
    columns = [*ROSTER_COLUMNS, *areas]  # a city's [areas] columns: its daily-list filters
    return roster[columns]


def build_roster(data: CityData, date: pd.Timestamp) -> Roster:
    """The roster for `date` and its features, computed from rows dated strictly before `date`."""
    establishments = establishments_in_scope(data, date)
    queries = establishments.assign(date=date)
    features = build_features(queries, data) if len(queries) else pd.DataFrame(index=queries.index)
    return Roster(date=date, establishments=establishments, features=features)
