"""What happened near the establishment shortly before the date: complaints, crime, nearby inspections.

Queries are grouped by date; for each date a k-d tree is built over only the rows dated inside the
window before it, so a row on or after the date can never be counted. A date with a whole roster of
queries (a daily list) counts within radii through a `RadiusIndex` instead, built once per city's
data: the same counts, without a tree per window (training/inspections/features/radius_index.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key, present
from training.inspections.features.family import FeatureFamily, located
from training.inspections.features.radius_index import (
    LocationRows,
    RadiusIndex,
    StackedRadiusIndex,
    count_unindexed,
)
from training.inspections.frame_memo import remembered
from training.inspections.ingest import CityData, EventTable
from training.points import to_day, to_xyz

COORDINATES = ("latitude", "longitude")


def _query_groups(queries: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Query days, coordinates, and the row positions of located queries per distinct day."""
    day = to_day(queries["date"])
    xyz = to_xyz(queries["latitude"], queries["longitude"])
    located = np.flatnonzero(~np.isnan(xyz).any(axis=1))
    groups = [located[day[located] == value] for value in np.unique(day[located])]
    return day, xyz, groups


def _window(days: np.ndarray, day: int, window_days: int) -> slice:
    """Rows (of a day-sorted array) dated in [day - window_days, day)."""
    return slice(
        int(np.searchsorted(days, day - window_days, side="left")),
        int(np.searchsorted(days, day, side="left")),
    )


INDEX_MIN_QUERIES = 1_000  # a date with this many queries is a roster: counted through an index
# Points added since an index was built (outcomes recorded through the API), counted directly per
# list; beyond, they get an index of their own, built again whenever this many more are added.
MAX_UNINDEXED = 256
_INDEXES_KEPT = 8  # indexes kept (cities x sources, and points added), least recently built out
_indexes: dict[tuple[Any, ...], tuple[Any, RadiusIndex, frozenset[str] | None]] = {}
_indexes_lock = threading.Lock()  # the lists of several dates may be ranked in threads


def _locations(inspections: pd.DataFrame) -> LocationRows:
    """Every distinct located place of the inspections (where roster queries stand), once per city's
    data: the indexes over them share it, and so each list's look-up of its places' rows."""

    def distinct() -> LocationRows:
        xyz = to_xyz(inspections["latitude"], inspections["longitude"])
        return LocationRows(np.unique(xyz[~np.isnan(xyz).any(axis=1)], axis=0))

    return remembered(inspections, "locations", distinct)


def _stored(key: tuple[Any, ...]) -> tuple[Any, RadiusIndex, frozenset[str] | None] | None:
    with _indexes_lock:
        return _indexes.get(key)


def _store(key: tuple[Any, ...], entry: tuple[Any, RadiusIndex, frozenset[str] | None]) -> None:
    with _indexes_lock:
        _indexes.pop(key, None)
        while len(_indexes) >= _INDEXES_KEPT:
            _indexes.pop(next(iter(_indexes)))
        _indexes[key] = entry


def _radius_counts(
    index: RadiusIndex | StackedRadiusIndex | None,
    query_xyz: np.ndarray,
    points: np.ndarray,
    flags: np.ndarray | None,
    window: slice,
    first_day: int,
    end_day: int,
    radii: tuple[float, ...],
    unindexed: np.ndarray | None = None,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per radius: points, and flagged points, of `points[window]` within it of each query. Through
    the index where it holds the query's place (plus `unindexed` points in the window, counted
    directly), else from k-d trees over the window."""
    rows = index.rows_of(query_xyz) if index is not None else np.full(len(query_xyz), -1)
    held = rows >= 0
    indexed = index.count(rows[held], first_day, end_day) if index is not None and held.any() else {}
    extra = np.empty(0, dtype=np.int64)
    if unindexed is not None and indexed:
        extra = window.start + np.flatnonzero(unindexed[window])
    in_window = points[window]
    tree = cKDTree(in_window) if (~held).any() and len(in_window) else None
    flagged = flags is not None and (~held).any() and flags[window].any()
    flagged_tree = cKDTree(in_window[flags[window]]) if flagged and flags is not None else None
    more = (
        count_unindexed(query_xyz[held], points[extra], None if flags is None else flags[extra], radii)
        if len(extra)
        else {}
    )
    result: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for radius in radii:
        totals = np.zeros(len(query_xyz), dtype=np.int64)
        hits = np.zeros(len(query_xyz), dtype=np.int64)
        if indexed:
            totals[held], hits[held] = indexed[radius]
            if more:
                totals[held] += more[radius][0]
                hits[held] += more[radius][1]
        if tree is not None:
            totals[~held] = tree.query_ball_point(query_xyz[~held], radius, return_length=True)
        if flagged_tree is not None:
            hits[~held] = flagged_tree.query_ball_point(query_xyz[~held], radius, return_length=True)
        result[radius] = (totals, hits)
    return result


def _event_index(table: EventTable, places: pd.DataFrame) -> RadiusIndex:
    """The radius index of an event source (read once per city: the entry holds the table, so its
    id cannot be reused by another)."""
    key = ("events", table.name, id(table))
    entry = _stored(key)
    if entry is None or entry[0] is not table:
        index = RadiusIndex(_locations(places), table.xyz, table.day, None, (table.radius_km,))
        entry = (table, index, None)
        _store(key, entry)
    return entry[1]


def event_density_features(
    queries: pd.DataFrame, events: tuple[EventTable, ...], places: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Events per km² within each source's radius over its window before the date.

    `places` (inspections with coordinates): where a roster's queries stand, for the index."""
    day, xyz, groups = _query_groups(queries)
    result = pd.DataFrame(index=queries.index)
    for table in events:
        density = np.full(len(queries), np.nan)
        area = math.pi * table.radius_km**2
        for rows in groups:
            query_day = int(day[rows[0]])
            window = _window(table.day, query_day, table.window_days)
            if window.stop == window.start:
                density[rows] = 0.0
                continue
            index = None
            if places is not None and len(rows) >= INDEX_MIN_QUERIES:
                index = _event_index(table, places)
            counts, _ = _radius_counts(
                index,
                xyz[rows],
                table.xyz,
                None,
                window,
                query_day - table.window_days,
                query_day,
                (table.radius_km,),
            )[table.radius_km]
            density[rows] = counts.astype("float64") / area
        name = f"{table.name}_per_km2_{table.window_days}d_{table.radius_km:g}km"
        result[name] = density
    return result


def _located_history(inspections: pd.DataFrame) -> dict[str, np.ndarray]:
    """Inspections with an outcome and coordinates, sorted by day, as (read-only) arrays."""
    return remembered(inspections, "history", lambda: _read_only(_history_arrays(inspections)))


def _read_only(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def _history_arrays(inspections: pd.DataFrame) -> dict[str, np.ndarray]:
    located = inspections[
        inspections["has_outcome"] & inspections["latitude"].notna() & inspections["longitude"].notna()
    ]
    day = to_day(located["date"])
    order = np.argsort(day, kind="stable")
    violations = located[["n_critical", "n_serious", "n_minor"]].sum(axis=1).to_numpy(dtype="float64")
    return {
        "id": located["inspection_id"].to_numpy(dtype=object)[order],
        "day": day[order],
        "xyz": to_xyz(located["latitude"], located["longitude"])[order],
        "label": located["label"].to_numpy(dtype="float64")[order],
        "failed": located["failed"].to_numpy(dtype="float64")[order],
        "violations": violations[order],
    }


def nearby_outcome_features(
    queries: pd.DataFrame,
    inspections: pd.DataFrame,
    radii_km: tuple[float, ...],
    windows_days: tuple[int, ...],
    nearest: tuple[tuple[int, int], ...],
) -> pd.DataFrame:
    """Outcomes of nearby inspections over recent windows: within fixed radii and among the k nearest.

    Inspectors work by area, so recent nearby outcomes carry the area's inspection practice without
    naming any inspector. `nearest` holds (window_days, k) pairs.
    """
    history = _located_history(inspections)
    day, xyz, groups = _query_groups(queries)
    columns: dict[str, np.ndarray] = {}
    radius_index: RadiusIndex | StackedRadiusIndex | None = None
    unindexed: np.ndarray | None = None
    if any(len(rows) >= INDEX_MIN_QUERIES for rows in groups):
        radius_index, unindexed = _history_index(inspections, history, radii_km)

    def column(name: str) -> np.ndarray:
        return columns.setdefault(name, np.full(len(queries), np.nan))

    for rows in groups:
        query_day = int(day[rows[0]])
        roster = len(rows) >= INDEX_MIN_QUERIES
        for window_days in windows_days:
            window = _window(history["day"], query_day, window_days)
            counted = _radius_counts(
                radius_index if roster else None,
                xyz[rows],
                history["xyz"],
                history["label"] > 0,
                window,
                query_day - window_days,
                query_day,
                radii_km,
                unindexed,
            )
            for radius in radii_km:
                total, hits = counted[radius]
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(total > 0, hits / np.maximum(total, 1), np.nan)
                column(f"nearby_critical_share_{window_days}d_{radius:g}km")[rows] = share
                column(f"nearby_inspections_{window_days}d_{radius:g}km")[rows] = total
        # A roster's establishments share places (a mall, a food court): each place asked once, the
        # same answer for every establishment there (a query's neighbours do not depend on the others).
        places, same_place = xyz[rows], np.arange(len(rows))
        if roster and radius_index is not None:
            places, same_place = radius_index.location_rows.distinct(places)
        for window_days, k in nearest:
            window = _window(history["day"], query_day, window_days)
            prefix = f"nearest{k}_{window_days}d"
            for name in ("critical_share", "fail_share", "mean_violations", "mean_km"):
                column(f"{prefix}_{name}")
            if window.stop - window.start < k:
                continue
            distance, index = cKDTree(history["xyz"][window]).query(places, k=k)
            critical = history["label"][window][index].mean(axis=1)
            failed = history["failed"][window][index].mean(axis=1)
            violations = history["violations"][window][index].mean(axis=1)
            column(f"{prefix}_critical_share")[rows] = critical[same_place]
            column(f"{prefix}_fail_share")[rows] = failed[same_place]
            column(f"{prefix}_mean_violations")[rows] = violations[same_place]
            column(f"{prefix}_mean_km")[rows] = distance.mean(axis=1)[same_place]
    if not groups:  # no located query: still return every column
        for window_days in windows_days:
            for radius in radii_km:
                column(f"nearby_critical_share_{window_days}d_{radius:g}km")
                column(f"nearby_inspections_{window_days}d_{radius:g}km")
        for window_days, k in nearest:
            for name in ("critical_share", "fail_share", "mean_violations", "mean_km"):
                column(f"nearest{k}_{window_days}d_{name}")
    return pd.DataFrame(columns, index=queries.index)


def _history_index(
    inspections: pd.DataFrame, history: dict[str, np.ndarray], radii_km: tuple[float, ...]
) -> tuple[RadiusIndex | StackedRadiusIndex, np.ndarray]:
    """The radius index over located inspection outcomes, and which rows of `history` it lacks.

    Outcomes recorded after the city's files were read only add rows (ingest.with_recorded_outcomes),
    so the index of the data as first read stays valid: its rows are matched by inspection id and
    the others counted directly, or once they are many, through an index of their own. Kept per
    city: keyed by its earliest inspection, which recorded outcomes never precede by much."""
    return remembered(
        inspections, ("index", radii_km), lambda: _fresh_history_index(inspections, history, radii_km)
    )


def _fresh_history_index(
    inspections: pd.DataFrame, history: dict[str, np.ndarray], radii_km: tuple[float, ...]
) -> tuple[RadiusIndex | StackedRadiusIndex, np.ndarray]:
    ids = history["id"]
    key = ("nearby", radii_km, ids[0] if len(ids) else None)
    entry = _stored(key)
    if entry is not None:
        base, base_ids = entry[1], entry[2]
        assert base_ids is not None
        lacked = np.fromiter((each not in base_ids for each in ids), dtype=bool, count=len(ids))
        # Every indexed row still there (the same city's data), and not more new ones than it holds.
        if len(ids) - int(lacked.sum()) == len(base_ids) and lacked.sum() <= len(base_ids):
            return _with_added_points(key, base, history, lacked)
    flags = history["label"] > 0
    index = RadiusIndex(_locations(inspections), history["xyz"], history["day"], flags, radii_km)
    _store(key, (None, index, frozenset(ids)))
    return index, _read_only_mask(np.zeros(len(ids), dtype=bool))


def _with_added_points(
    key: tuple[Any, ...], base: RadiusIndex, history: dict[str, np.ndarray], lacked: np.ndarray
) -> tuple[RadiusIndex | StackedRadiusIndex, np.ndarray]:
    """The base index, with an index of its own for the rows it lacks once they are too many to
    count directly: the base (in a server, built before its list processes were forked and shared
    with them) is never built again for outcomes recorded since, each process building only the
    small index of those."""
    if lacked.sum() <= MAX_UNINDEXED:
        return base, _read_only_mask(lacked)
    ids = history["id"]
    added_key = ("nearby-added", *key[1:])
    entry = _stored(added_key)
    if entry is not None and entry[0] is base:
        added_ids = entry[2]
        assert added_ids is not None
        unindexed = lacked.copy()  # of the rows the base lacks, those the added index lacks too
        unindexed[lacked] = [each not in added_ids for each in ids[lacked]]
        if int((lacked & ~unindexed).sum()) == len(added_ids) and unindexed.sum() <= MAX_UNINDEXED:
            return StackedRadiusIndex(base, entry[1]), _read_only_mask(unindexed)
    flags = history["label"][lacked] > 0
    added = base.over_more_points(history["xyz"][lacked], history["day"][lacked], flags)
    _store(added_key, (base, added, frozenset(ids[lacked])))
    return StackedRadiusIndex(base, added), _read_only_mask(np.zeros(len(ids), dtype=bool))


def _read_only_mask(mask: np.ndarray) -> np.ndarray:
    mask.flags.writeable = False
    return mask


def prepare_indexes(data: CityData) -> None:
    """Build the radius indexes a daily list of this city's data uses, now (e.g. in a server before
    it forks its list processes, which then share them instead of building one each)."""
    config = data.config
    if "neighbourhood" in config.families and config.neighbourhood_radii_km:
        history = _located_history(data.inspections)
        _history_index(data.inspections, history, config.neighbourhood_radii_km)
    if "environment" in config.families:
        for table in data.events:
            _event_index(table, data.inspections)


AREA_PRIOR_WEIGHT = 5.0  # pseudo-inspections at the city-wide rate, so a quiet area is not 0 or 1


AREA_KEY_STRIDE = 1_000_000  # area code * stride + day: one sorted key for (area, day)


@dataclass(frozen=True)
class _AreaHistory:
    """A city's inspection outcomes by area and day, as `area_outcome_features` searches them: derived
    once per data frame (frame_memo), not for every daily list."""

    codes: dict[str, int]  # area ("" when missing) -> code
    key: np.ndarray  # sorted area code * AREA_KEY_STRIDE + day
    prefix: np.ndarray  # cumulative labels in `key` order, from 0
    by_day: np.ndarray  # every outcome's day, sorted
    city_prefix: np.ndarray  # cumulative labels in day order, from 0

    @classmethod
    def of(cls, inspections: pd.DataFrame, area_field: str) -> _AreaHistory:
        history = inspections[inspections["has_outcome"]]
        area = history[area_field].astype("string").fillna("")
        codes, uniques = pd.factorize(area)
        day = to_day(history["date"])
        key = codes.astype("int64") * AREA_KEY_STRIDE + day
        order = np.argsort(key, kind="stable")
        labels = history["label"].to_numpy(dtype="float64")
        return cls(
            codes={str(name): code for code, name in enumerate(uniques)},
            key=key[order],
            prefix=np.concatenate(([0.0], np.cumsum(labels[order]))),
            by_day=np.sort(day),
            city_prefix=np.concatenate(([0.0], np.cumsum(labels[np.argsort(day)]))),
        )


def area_outcome_features(
    queries: pd.DataFrame, inspections: pd.DataFrame, area_field: str, windows_days: tuple[int, ...]
) -> pd.DataFrame:
    """Critical share of recent inspections in the same administrative area (e.g. ZIP code).

    The share is shrunk towards the city-wide rate of all earlier inspections.
    """
    history = remembered(
        inspections, ("area history", area_field), lambda: _AreaHistory.of(inspections, area_field)
    )
    query_area = queries[area_field].astype("string").fillna("")
    unseen = len(history.codes)  # an area with no earlier inspection: no rows under its code
    codes = np.array([history.codes.get(area, unseen) for area in query_area.tolist()], dtype="int64")
    query_day = to_day(queries["date"])
    query_key = codes * AREA_KEY_STRIDE + query_day
    key, prefix = history.key, history.prefix
    before = np.searchsorted(history.by_day, query_day, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        city_rate = np.where(before > 0, history.city_prefix[before] / np.maximum(before, 1), np.nan)

    result = pd.DataFrame(index=queries.index)
    known = query_area.to_numpy() != ""
    # Searched in key order (numpy's binary searches are several times faster over sorted needles),
    # each answer put back at its query's place.
    order = np.argsort(query_key, kind="stable")
    ordered = query_key[order]
    stop = np.empty(len(ordered), dtype=np.intp)
    stop[order] = np.searchsorted(key, ordered, side="left")
    for window_days in windows_days:
        start = np.empty(len(ordered), dtype=np.intp)
        start[order] = np.searchsorted(key, ordered - window_days, side="left")
        count = (stop - start).astype("float64")
        hits = prefix[stop] - prefix[start]
        share = (hits + AREA_PRIOR_WEIGHT * city_rate) / (count + AREA_PRIOR_WEIGHT)
        result[f"area_critical_share_{window_days}d"] = np.where(known, share, np.nan)
        result[f"area_inspections_{window_days}d"] = np.where(known, count, np.nan)
    return result


def _build_nearby(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame:
    return nearby_outcome_features(
        queries,
        data.inspections,
        config.neighbourhood_radii_km,
        config.neighbourhood_windows_days,
        config.neighbourhood_nearest,
    )


def _describe_nearby(name: str) -> str | None:
    if name.startswith("nearby_critical_share_"):
        window, radius = name.removeprefix("nearby_critical_share_").split("_")
        return f"share of inspections within {radius} in the last {window} that found a critical violation"
    if name.startswith("nearby_inspections_"):
        window, radius = name.removeprefix("nearby_inspections_").split("_")
        return f"number of inspections within {radius} in the last {window}"
    if name.startswith("nearest"):
        k, window, measure = name.removeprefix("nearest").split("_", 2)
        what = {
            "critical_share": "share that found a critical violation",
            "fail_share": "share that failed",
            "mean_violations": "mean number of violations",
            "mean_km": "mean distance in km",
        }.get(measure, measure)
        return f"{what}, of the {k} nearest inspections in the last {window}"
    return None


def _needs_coordinates(document: Mapping[str, Any]) -> str | None:
    return None if located(document) else "needs inspections.columns.latitude and .longitude"


NEIGHBOURHOOD = FeatureFamily(
    name="neighbourhood",
    build=_build_nearby,
    describe=_describe_nearby,
    keys=(
        Key(
            "neighbourhood.radii_km",
            "list of numbers",
            False,
            "[1.0, 2.0]",
            "radii for nearby inspection outcomes",
        ),
        Key(
            "neighbourhood.window_days",
            "list of integers",
            False,
            "[90, 365]",
            "windows for nearby inspection outcomes",
        ),
        Key(
            "neighbourhood.nearest",
            "list of [window_days, k] pairs",
            False,
            "[[90, 25]]",
            "outcomes of the k nearest inspections in each window",
        ),
    ),
    needs=_needs_coordinates,
    query_columns=COORDINATES,
    anchored=True,
)


def _describe_density(name: str) -> str | None:
    if "_per_km2_" not in name:
        return None
    source, rest = name.split("_per_km2_")
    window, radius = rest.split("_")
    return f"{source.replace('_', ' ')} per km² within {radius} in the last {window}"


def _needs_events(document: Mapping[str, Any]) -> str | None:
    if located(document) and bool(document.get("environment")):
        return None
    return "needs coordinates and an [[environment]] source"


def _event_files(config: CityConfig) -> Sequence[Path]:
    return tuple(source.source.path for source in config.environment)


ENVIRONMENT = FeatureFamily(
    name="environment",
    build=lambda queries, data, config: event_density_features(queries, data.events, data.inspections),
    describe=_describe_density,
    keys=(
        Key("environment[].name", "string", False, "—", "event source name (feature names start with it)"),
        Key("environment[].file", "path", False, "—", "the events CSV"),
        Key("environment[].date_column", "string (column)", False, "—", "event date column"),
        Key("environment[].date_format", "string", False, "—", "strptime format of the event dates"),
        Key("environment[].latitude", "string (column)", False, "—", "event latitude column"),
        Key("environment[].longitude", "string (column)", False, "—", "event longitude column"),
        Key("environment[].window_days", "integer", False, "—", "days before the inspection date that count"),
        Key("environment[].radius_km", "number", False, "—", "radius around the establishment that counts"),
        Key(
            "environment[].exclude_column",
            "string (column)",
            False,
            "not used",
            "column marking rows to ignore (e.g. duplicates)",
        ),
        Key(
            "environment[].exclude_values",
            "list of strings",
            False,
            "[]",
            "values of `exclude_column` to ignore",
        ),
    ),
    needs=_needs_events,
    files=_event_files,
    query_columns=COORDINATES,
    anchored=True,
)


def _build_area(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame | None:
    if config.area_field is None:
        return None
    return area_outcome_features(queries, data.inspections, config.area_field, config.area_windows_days)


def _describe_area(name: str) -> str | None:
    if name.startswith("area_critical_share_"):
        window = name.rsplit("_", 1)[1]
        return f"share of inspections in the same area in the last {window} with a critical violation"
    if name.startswith("area_inspections_"):
        return f"number of inspections in the same area in the last {name.rsplit('_', 1)[1]}"
    return None


AREA = FeatureFamily(
    name="area",
    build=_build_area,
    describe=_describe_area,
    keys=(
        Key(
            "neighbourhood.area_field",
            "string",
            False,
            "not used",
            "canonical inspections field naming an area (area family)",
        ),
        Key(
            "neighbourhood.area_window_days",
            "list of integers",
            False,
            "[]",
            "windows for the area's recent outcomes",
        ),
    ),
    needs=lambda document: (
        None if present(document, "neighbourhood.area_field") else "needs neighbourhood.area_field"
    ),
    anchored=True,
)
