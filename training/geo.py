"""Point-in-polygon: which census tract and community area a coordinate falls in.

Built once per pair of boundary files and cached, so a per-request lookup (the hospital endpoint) costs
one STRtree query. Nothing here knows about any particular model.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

# A point this close to the city's edge (geocoder noise, a house on the boundary line) still counts.
EDGE_BUFFER_M = 50.0
_METRES_PER_DEGREE_LAT = 110_574.0
_METRES_PER_DEGREE_LON_EQUATOR = 111_320.0
# PointLocator's grid: about 100 m, small enough that most homes' cells lie inside one tract
# (Chicago's tracts are ~900 m across), large enough that the grid builds in about a second.
CELL_M = 100.0


class OutsideServiceArea(Exception):
    """A coordinate is not inside (or within the edge buffer of) any of the city's areas."""

    def __init__(self, latitude: float, longitude: float) -> None:
        self.latitude = latitude
        self.longitude = longitude
        super().__init__(f"({latitude}, {longitude}) is outside the service area")


@dataclass(frozen=True)
class Location:
    tract: str | None  # None for the few points in a community area that no tract shape covers
    community_area: int


def read_geojson(path: Path) -> dict[str, Any]:
    """A GeoJSON document from `path` (plain or .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


class GeoIndex:
    """Tracts and community areas in a local metric projection, with one STRtree each.

    `tract_area` is each tract's own community-area assignment, used when a point lies in a tract but
    in no community-area shape (the two boundary files do not meet exactly at the lake shore).
    """

    def __init__(
        self,
        tract_ids: list[str],
        tract_shapes: list[Any],
        tract_area: list[int],
        area_ids: list[int],
        area_shapes: list[Any],
    ) -> None:
        everything = shapely.union_all(area_shapes)
        centre_lat = float(everything.centroid.y)
        self._lon_scale = _METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(centre_lat))
        self.tract_ids = np.asarray(tract_ids, dtype=object)
        self.tract_area = np.asarray(tract_area, dtype="int64")
        self.area_ids = np.asarray(area_ids, dtype="int64")
        self._tracts = np.asarray([self._project(g) for g in tract_shapes], dtype=object)
        self._areas = np.asarray([self._project(g) for g in area_shapes], dtype=object)
        shapely.prepare(self._tracts)
        shapely.prepare(self._areas)
        self._tract_tree = shapely.STRtree(self._tracts)
        self._area_tree = shapely.STRtree(self._areas)

    def _xy(self, latitude: np.ndarray, longitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return longitude * self._lon_scale, latitude * _METRES_PER_DEGREE_LAT

    def _project(self, geometry: Any) -> Any:
        # Equirectangular about the city's centre: metre distances to well under 1% over a city.
        return shapely.transform(
            geometry, lambda c: np.column_stack(self._xy(c[:, 1], c[:, 0])), include_z=False
        )

    def _lookup(self, tree: shapely.STRtree, shapes: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Index of the shape containing each point (or nearest within the buffer), else -1."""
        found = np.full(len(points), -1, dtype="int64")
        # Bounding boxes from the tree, then the exact test against the prepared shapes (much faster
        # than a tree predicate, which cannot use the shapes' preparation).
        point_index, shape_index = tree.query(points)
        inside = shapely.intersects(shapes[shape_index], points[point_index])
        # Several hits only on a shared boundary: keep the lowest shape index, so the answer is stable.
        for p, s in zip(point_index[inside][::-1], shape_index[inside][::-1], strict=True):
            found[p] = s
        missing = np.flatnonzero((found < 0) & ~shapely.is_empty(points))
        if missing.size:
            near = tree.query_nearest(points[missing], max_distance=EDGE_BUFFER_M, all_matches=False)
            found[missing[near[0]]] = near[1]
        return found

    def locate_many(self, latitude: Any, longitude: Any) -> pd.DataFrame:
        """`tract` (string) and `community_area` (Int64) for each point; <NA> community area = outside.

        Missing or non-finite coordinates are outside. Repeated coordinates are looked up once.
        """
        lat = np.asarray(latitude, dtype="float64")
        lon = np.asarray(longitude, dtype="float64")
        valid = np.isfinite(lat) & np.isfinite(lon)
        pairs, inverse = np.unique(
            np.column_stack((np.where(valid, lat, np.nan), np.where(valid, lon, np.nan))),
            axis=0,
            return_inverse=True,
        )
        inverse = inverse.reshape(-1)
        unique_valid = np.isfinite(pairs).all(axis=1)
        x, y = self._xy(np.nan_to_num(pairs[:, 0]), np.nan_to_num(pairs[:, 1]))
        points = shapely.points(x, y)
        points[~unique_valid] = shapely.from_wkt("POINT EMPTY")
        tract_index = self._lookup(self._tract_tree, self._tracts, points)[inverse]
        area_index = self._lookup(self._area_tree, self._areas, points)[inverse]
        in_tract = tract_index >= 0
        tracts = pd.Series(pd.NA, index=range(len(lat)), dtype="string")
        tracts[in_tract] = self.tract_ids[tract_index[in_tract]]
        areas = np.where(
            area_index >= 0,
            self.area_ids[np.maximum(area_index, 0)],
            np.where(in_tract, self.tract_area[np.maximum(tract_index, 0)], -1),
        )
        community = pd.array(np.where(areas >= 0, areas, 0), dtype="Int64")
        community[areas < 0] = pd.NA
        return pd.DataFrame({"tract": tracts, "community_area": community})

    def sample_points(
        self, tract: str, count: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """`count` uniformly random (latitude, longitude) points inside one tract (rejection sampling)."""
        polygon = self._tracts[int(np.flatnonzero(self.tract_ids == tract)[0])]
        x0, y0, x1, y1 = polygon.bounds
        xs: list[float] = []
        ys: list[float] = []
        while len(xs) < count:
            x, y = rng.uniform(x0, x1, 4 * count), rng.uniform(y0, y1, 4 * count)
            inside = shapely.contains_xy(polygon, x, y)
            xs += x[inside].tolist()
            ys += y[inside].tolist()
        return np.asarray(ys[:count]) / _METRES_PER_DEGREE_LAT, np.asarray(xs[:count]) / self._lon_scale

    def locate(self, latitude: float, longitude: float) -> Location:
        """The tract and community area of one point; raises OutsideServiceArea."""
        row = self.locate_many([latitude], [longitude]).iloc[0]
        if pd.isna(row["community_area"]):
            raise OutsideServiceArea(latitude, longitude)
        tract = None if pd.isna(row["tract"]) else str(row["tract"])
        return Location(tract=tract, community_area=int(row["community_area"]))


# Per cell: the one shape that alone holds all of it, else the indexes of the shapes that meet it.
Grid = list[int | tuple[int, ...]]


@dataclass(frozen=True)
class BoxGrids:
    """PointLocator's per-cell entries for boxes of a caller's choosing (`PointLocator.box_grids`)."""

    tracts: Grid
    areas: Grid


class PointLocator:
    """`GeoIndex.locate_many` for one point at a time, for request paths (a hospital's child).

    A grid of cells over the city holds, per cell, the shapes that meet it. A cell inside the
    interior of one shape that meets no other can only ever be answered with that shape; in a cell
    that several shapes meet (a boundary runs through it) only those few are tested, with the same
    test as `GeoIndex._lookup`, and the lowest index that holds the point wins, as there. A point
    that no shape holds (the city's edge, the lake shore, outside) takes `_lookup` itself, for its
    nearest-shape-within-the-buffer rule. The answers are `locate_many`'s
    (tests/training/lead_risk/test_geo.py); the grid saves the tree query and most shape tests.
    """

    def __init__(self, geo: GeoIndex, cell_m: float = CELL_M) -> None:
        self._geo = geo
        bounds = np.concatenate([shapely.bounds(geo._tracts), shapely.bounds(geo._areas)])
        self._x0, self._y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        self._cell = float(cell_m)
        self._nx = int(math.ceil((float(bounds[:, 2].max()) - self._x0) / cell_m))
        self._ny = int(math.ceil((float(bounds[:, 3].max()) - self._y0) / cell_m))
        column, row = np.meshgrid(np.arange(self._nx), np.arange(self._ny))
        left, bottom = self._x0 + column.ravel() * cell_m, self._y0 + row.ravel() * cell_m
        cells = shapely.box(left, bottom, left + cell_m, bottom + cell_m)
        self._tracts = _cell_shapes(geo._tract_tree, geo._tracts, cells)
        self._areas = _cell_shapes(geo._area_tree, geo._areas, cells)

    def locate(self, latitude: float, longitude: float) -> tuple[int, int]:
        """(tract index in `geo.tract_ids` or -1, community-area number or -1 when outside)."""
        geo = self._geo
        x, y = longitude * geo._lon_scale, latitude * _METRES_PER_DEGREE_LAT
        column, row = (x - self._x0) // self._cell, (y - self._y0) // self._cell
        cell = int(row) * self._nx + int(column) if 0 <= column < self._nx and 0 <= row < self._ny else -1
        return self._answer(self._tracts, self._areas, cell, x, y)

    def box_grids(self, south: np.ndarray, west: np.ndarray, north: np.ndarray, east: np.ndarray) -> BoxGrids:
        """The grid's entries for boxes of the caller's own (latitude, longitude bounds), e.g. finer
        cells around the addresses a request path meets most; `locate_in_box` reads them."""
        geo = self._geo
        pad = 1e-3  # metres, far above the rounding of a projected coordinate: a box slightly larger
        boxes = shapely.box(
            west * geo._lon_scale - pad,
            south * _METRES_PER_DEGREE_LAT - pad,
            east * geo._lon_scale + pad,
            north * _METRES_PER_DEGREE_LAT + pad,
        )
        return BoxGrids(
            _cell_shapes(geo._tract_tree, geo._tracts, boxes), _cell_shapes(geo._area_tree, geo._areas, boxes)
        )

    def locate_in_box(self, grids: BoxGrids, box: int, latitude: float, longitude: float) -> tuple[int, int]:
        """`locate` for a point inside box `box` of `grids`: the same answer, fewer shape tests."""
        geo = self._geo
        x, y = longitude * geo._lon_scale, latitude * _METRES_PER_DEGREE_LAT
        return self._answer(grids.tracts, grids.areas, box, x, y)

    def _answer(self, tracts: Grid, areas: Grid, cell: int, x: float, y: float) -> tuple[int, int]:
        geo = self._geo
        tract = self._find(tracts, cell, geo._tract_tree, geo._tracts, x, y)
        area = self._find(areas, cell, geo._area_tree, geo._areas, x, y)
        if area >= 0:
            return tract, int(geo.area_ids[area])
        if tract >= 0 and int(geo.tract_area[tract]) >= 0:
            return tract, int(geo.tract_area[tract])  # the lake-shore gap, as locate_many does
        return tract, -1

    def _find(self, grid: Grid, cell: int, tree: Any, shapes: np.ndarray, x: float, y: float) -> int:
        entry = grid[cell] if cell >= 0 else ()
        if isinstance(entry, int):
            return entry
        for index in entry:  # ascending: the lowest index that holds the point, as _lookup keeps
            if shapely.intersects_xy(shapes[index], x, y):
                return index
        return int(self._geo._lookup(tree, shapes, shapely.points([x], [y]))[0])


def _cell_shapes(tree: shapely.STRtree, shapes: np.ndarray, cells: np.ndarray) -> Grid:
    """Per cell: the one shape whose interior holds it and that no other shape meets, else the
    (ascending) indexes of every shape that meets it."""
    cell_index, shape_index = tree.query(cells, predicate="intersects")
    order = np.lexsort((shape_index, cell_index))
    cell_index, shape_index = cell_index[order], shape_index[order]
    meeting: list[tuple[int, ...]] = [()] * len(cells)
    starts: list[int] = (
        np.flatnonzero(np.r_[True, cell_index[1:] != cell_index[:-1]]).tolist() if len(cell_index) else []
    )
    stops = [*starts[1:], len(cell_index)] if starts else []  # no cells or none meeting a shape
    # One object per distinct entry, shared by every cell that has it (neighbouring cells mostly do).
    shared: dict[tuple[int, ...], tuple[int, ...]] = {}
    for start, stop in zip(starts, stops, strict=True):
        entry = tuple(shape_index[start:stop].tolist())
        meeting[int(cell_index[start])] = shared.setdefault(entry, entry)
    grid: Grid = list(meeting)
    alone = [i for i, entry in enumerate(meeting) if len(entry) == 1]
    if alone:
        candidates = np.asarray([meeting[i][0] for i in alone])
        inside = shapely.contains_properly(shapes[candidates], cells[alone])
        for i, holds in zip(alone, inside.tolist(), strict=True):
            if holds:
                grid[i] = meeting[i][0]  # the entry's own int object, shared with its tuple
    return grid


def _features(path: Path, id_key: str) -> tuple[list[str], list[Any], list[dict[str, Any]]]:
    document = read_geojson(path)
    ids, shapes, properties = [], [], []
    for feature in document.get("features", []):
        props = feature.get("properties") or {}
        if props.get(id_key) in (None, "") or not feature.get("geometry"):
            raise ValueError(f"{path}: a feature has no {id_key!r} or no geometry")
        ids.append(str(props[id_key]))
        shapes.append(shape(feature["geometry"]))
        properties.append(props)
    if not ids:
        raise ValueError(f"{path}: no features")
    return ids, shapes, properties


@lru_cache(maxsize=4)
def load_geo_index(
    tracts_path: Path,
    areas_path: Path,
    tract_id_key: str = "geoid10",
    tract_area_key: str = "commarea",
    area_id_key: str = "area_numbe",
) -> GeoIndex:
    """Build (once per argument set) the index of a city's tracts and community areas."""
    tract_ids, tract_shapes, tract_props = _features(Path(tracts_path), tract_id_key)
    area_ids, area_shapes, _ = _features(Path(areas_path), area_id_key)
    return GeoIndex(
        tract_ids,
        tract_shapes,
        [int(props.get(tract_area_key) or -1) for props in tract_props],
        [int(value) for value in area_ids],
        area_shapes,
    )
