"""Which world an evaluation measures: history refreshed daily, or frozen at a cut date.

Refreshed: each inspection is scored with every outcome (and complaint, crime, licence) dated before
its own date, as a service whose outcomes are posted back every day would score it. Frozen: the same
inspections scored with the data cut at one date, as a service that stopped receiving data on that
day would score them. Date-relative inputs stay at each inspection's own date in both worlds: days
since the last inspection count to the inspection's date, weather is the weather before it, the
calendar is its own.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd

from training.inspections.ingest import CityData, EventTable
from training.points import to_day

HistoryMode = Literal["refreshed", "frozen"]
HISTORY_MODES: tuple[HistoryMode, ...] = ("refreshed", "frozen")


def _events_before(table: EventTable, cut_day: int) -> EventTable:
    keep = int(np.searchsorted(table.day, cut_day, side="left"))  # `day` is sorted
    return dataclasses.replace(table, day=table.day[:keep], xyz=table.xyz[:keep])


def history_as_of(data: CityData, cut: pd.Timestamp) -> CityData:
    """`data` as a service would hold it if nothing dated on or after `cut` had reached it.

    Inspections (with their outcomes), event sources (complaints, crime) and licence records dated
    on or after the cut are removed; weather stays, as it describes each inspection's own date.
    A family's own loaded data (`family_data`) is kept as is: a family that reads history of its own
    must declare it here to be cut.
    """
    cut = pd.Timestamp(cut).normalize()
    cut_day = int(to_day(pd.Series([cut]))[0])
    inspections = data.inspections[data.inspections["date"] < cut].reset_index(drop=True)
    licenses = data.licenses
    if licenses is not None:
        licenses = licenses[licenses["term_start"] < cut].reset_index(drop=True)
    return dataclasses.replace(
        data,
        inspections=inspections,
        licenses=licenses,
        events=tuple(_events_before(table, cut_day) for table in data.events),
    )
