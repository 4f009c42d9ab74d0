"""Counts of dated points within fixed radii of known locations, for any window of days, exactly.

A daily list asks the neighbourhood features for thousands of establishments on one date; building
k-d trees over the window and querying every establishment was most of a new date's cost. The
establishments stand at locations known in advance, so each (location, point) pair within the
largest radius is found once, and a window's count is then two binary searches per location. The
pairs are keyed by location row and day, so appending points (outcomes recorded later) never moves
the existing keys: points not in the index are counted directly (`count_unindexed`).

A point is within radius r when its squared chord distance is at most r², computed the same way
for the pairs and for the points counted directly.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

LOCATION_CHUNK = 512  # locations paired at a time: bounds the temporary arrays (~10 MB)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance of each row of `a` to the row of `b` at the same position."""
    difference = a - b
    result: np.ndarray = (difference * difference).sum(axis=1)
    return result


class RadiusIndex:
    """For `locations` (n × 3) and dated `points` (m × 3, `days`, an optional `flags` mask): how
    many points, and how many flagged points, lie within each of `radii` of a location in a window
    of days."""

    def __init__(
        self,
        locations: np.ndarray,
        points: np.ndarray,
        days: np.ndarray,
        flags: np.ndarray | None,
        radii: tuple[float, ...],
    ) -> None:
        self.radii = tuple(sorted(set(radii)))
        # Locations as raw bytes, sorted, for an exact vectorised look-up of each query's row.
        as_bytes = _as_bytes(locations)
        self._location_order = np.argsort(as_bytes, kind="stable")
        self._sorted_locations = as_bytes[self._location_order]
        self._day0 = int(days.min()) if len(days) else 0
        self._span = (int(days.max()) - self._day0 + 1 if len(days) else 1) + 1
        key_type = np.int32 if len(locations) * self._span < np.iinfo(np.int32).max else np.int64
        largest = self.radii[-1]
        pairs_by_radius: dict[float, list[np.ndarray]] = {radius: [] for radius in self.radii}
        flagged_by_radius: dict[float, list[np.ndarray]] = {radius: [] for radius in self.radii}
        point_tree = cKDTree(points) if len(points) else None
        for start in range(0, len(locations), LOCATION_CHUNK):
            chunk = locations[start : start + LOCATION_CHUNK]
            if point_tree is None:
                break
            # Candidates a hair beyond the largest radius; inclusion is decided below, the same way
            # for every radius and for points counted directly.
            found = cKDTree(chunk).sparse_distance_matrix(
                point_tree, largest * (1 + 1e-9), output_type="ndarray"
            )
            rows, columns = found["i"].astype(np.int64), found["j"].astype(np.int64)
            distance2 = squared_distances(chunk[rows], points[columns])
            keys = (rows + start) * self._span + (days[columns] - self._day0)
            for radius in self.radii:
                inside = distance2 <= radius * radius
                pairs_by_radius[radius].append(keys[inside].astype(key_type))
                if flags is not None:
                    flagged_by_radius[radius].append(keys[inside & flags[columns]].astype(key_type))
        self._keys = {radius: _sorted(parts, key_type) for radius, parts in pairs_by_radius.items()}
        self._flagged = {radius: _sorted(parts, key_type) for radius, parts in flagged_by_radius.items()}

    @property
    def nbytes(self) -> int:
        return sum(keys.nbytes for keys in (*self._keys.values(), *self._flagged.values()))

    def rows_of(self, locations: np.ndarray) -> np.ndarray:
        """Each location's row in the index, or -1 for a location it does not hold (exact match)."""
        if len(self._sorted_locations) == 0:
            return np.full(len(locations), -1)
        wanted = _as_bytes(locations)
        position = np.minimum(
            np.searchsorted(self._sorted_locations, wanted), len(self._sorted_locations) - 1
        )
        found = self._sorted_locations[position] == wanted
        rows: np.ndarray = np.where(found, self._location_order[position], -1)
        return rows

    def count(
        self, rows: np.ndarray, radius: float, first_day: int, end_day: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points, and flagged points, within `radius` of each indexed location row, dated in
        [first_day, end_day)."""
        # Each place once, in increasing order: numpy's search then starts each needle where the
        # previous one ended, where needles in random order cost a cache miss per step (~4x).
        places, inverse = np.unique(rows, return_inverse=True)
        base = places.astype(np.int64) * self._span
        low = base + min(max(first_day - self._day0, 0), self._span - 1)
        high = base + min(max(end_day - self._day0, 0), self._span - 1)
        totals = _between(self._keys[radius], low, high)[inverse]
        return totals, _between(self._flagged[radius], low, high)[inverse]


def count_unindexed(
    locations: np.ndarray, points: np.ndarray, flags: np.ndarray | None, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points, and flagged points, within `radius` of each location, by brute force (few points)."""
    totals = np.zeros(len(locations), dtype=np.int64)
    hits = np.zeros(len(locations), dtype=np.int64)
    for point, flag in zip(points, flags if flags is not None else np.zeros(len(points), bool), strict=True):
        inside = squared_distances(locations, point[np.newaxis, :]) <= radius * radius
        totals += inside
        if flag:
            hits += inside
    return totals, hits


def _as_bytes(points: np.ndarray) -> np.ndarray:
    """Each row of a float array as one opaque value (its bytes), comparable and sortable."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    width = points.dtype.itemsize * points.shape[1]
    return points.view(np.dtype((np.void, width))).ravel()


def _sorted(parts: list[np.ndarray], key_type: type) -> np.ndarray:
    keys = np.concatenate(parts) if parts else np.empty(0, dtype=key_type)
    keys.sort(kind="stable")
    return keys


def _between(keys: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How many keys lie in [low, high), for increasing bounds."""
    # Bounds in the keys' own type: searchsorted would otherwise convert the whole key array.
    low, high = low.astype(keys.dtype), high.astype(keys.dtype)
    counts: np.ndarray = np.searchsorted(keys, high) - np.searchsorted(keys, low)
    return counts
