"""Counts of dated points within fixed radii of known locations, for any window of days, exactly.

A daily list asks the neighbourhood features for thousands of establishments on one date; building
k-d trees over the window and querying every establishment was most of a new date's cost. The
establishments stand at locations known in advance, so each (location, point) pair within the
largest radius is found once, and a window's count is then two binary searches per location. The
pairs are keyed by location row and day, so appending points (outcomes recorded later) never moves
the existing keys: a few points not in the index are counted directly (`count_unindexed`), more get
an index of their own over the same locations (`over_more_points`, `StackedRadiusIndex`), so that the
first, large index is never built again for them (in a server, built before it forks and shared).
Keys that repeat (many points at one place on one day) are kept once, with how many there are.

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


class LocationRows:
    """Known locations (n × 3) and each asked location's row among them (exact match), the last
    answer remembered: a daily list asks the same for every window and event source (~1.7 ms each)."""

    def __init__(self, locations: np.ndarray) -> None:
        self.locations = locations
        # Locations as raw bytes, sorted, for an exact vectorised look-up of each query's row.
        as_bytes = _as_bytes(locations)
        self._order = np.argsort(as_bytes, kind="stable")
        self._sorted = as_bytes[self._order]
        self._last: tuple[bytes, np.ndarray] | None = None  # (asked locations' bytes, their rows)
        # The rows along a space-filling curve, and each row's place on it: places asked in that
        # order are near the ones asked before them, so k-d tree queries find their nodes in cache.
        self._along_curve = np.argsort(_morton_codes(locations), kind="stable")
        self._place_on_curve = np.empty(len(locations), dtype=np.int64)
        self._place_on_curve[self._along_curve] = np.arange(len(locations))

    def rows_of(self, locations: np.ndarray) -> np.ndarray:
        """Each location's row, or -1 for one not held (read-only: the answer may be shared)."""
        if len(self._sorted) == 0:
            return np.full(len(locations), -1)
        wanted = _as_bytes(locations)
        asked = wanted.tobytes()
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == asked:
            return last[1]
        position = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        found = self._sorted[position] == wanted
        rows: np.ndarray = np.where(found, self._order[position], -1)
        rows.flags.writeable = False
        self._last = (asked, rows)
        return rows

    def distinct(self, locations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct locations among `locations` (n × 3), and each one's position among them:
        through their rows where all are held (~0.3 ms for a Chicago roster, against ~3 ms for
        numpy's unique over rows of floats), then along a space-filling curve (a roster's k-nearest
        queries ~8% cheaper than in the order of the rows; the same answers in any order)."""
        rows = self.rows_of(locations)
        if len(rows) and (rows >= 0).all():
            held, inverse = np.unique(self._place_on_curve[rows], return_inverse=True)
            return self.locations[self._along_curve[held]], inverse.reshape(-1)
        places, inverse = np.unique(locations, axis=0, return_inverse=True)
        return places, inverse.reshape(-1)


class RadiusIndex:
    """For `locations` (n × 3) and dated `points` (m × 3, `days`, an optional `flags` mask): how
    many points, and how many flagged points, lie within each of `radii` of a location in a window
    of days."""

    def __init__(
        self,
        locations: np.ndarray | LocationRows,
        points: np.ndarray,
        days: np.ndarray,
        flags: np.ndarray | None,
        radii: tuple[float, ...],
    ) -> None:
        self.radii = tuple(sorted(set(radii)))
        # Kept for an index of more points over the same rows; shared by indexes over one city's
        # places, which then look a list's places up once for all of them.
        self.location_rows = locations if isinstance(locations, LocationRows) else LocationRows(locations)
        locations = self.location_rows.locations
        self._day0 = int(days.min()) if len(days) else 0
        self._span = (int(days.max()) - self._day0 + 1 if len(days) else 1) + 1
        # One sorted key per (location, point) pair within the largest radius: the location's row,
        # the pair's class (the smallest radius it is within, and the point's flag) and the point's
        # day, so that each class of a row is one run of keys ordered by day.
        self._classes = 2 * len(self.radii)
        width = len(locations) * self._classes * self._span
        key_type = np.int32 if width < np.iinfo(np.int32).max else np.int64
        parts: list[np.ndarray] = []
        point_tree = cKDTree(points) if len(points) else None
        for start in range(0, len(locations), LOCATION_CHUNK):
            if point_tree is None:
                break
            chunk = locations[start : start + LOCATION_CHUNK]
            rows, columns, band = _pairs_by_band(chunk, point_tree, points, self.radii)
            inside = band < len(self.radii)  # band b: within radii[b] and no smaller radius
            rows, columns, band = rows[inside], columns[inside], band[inside]
            flag = flags[columns].astype(np.int64) if flags is not None else 0
            pair_class = band * 2 + flag
            keys = ((rows + start) * self._classes + pair_class) * self._span + (days[columns] - self._day0)
            parts.append(keys.astype(key_type))
        self._keys, self._before = _compacted(_sorted(parts, key_type))

    def over_more_points(self, points: np.ndarray, days: np.ndarray, flags: np.ndarray | None) -> RadiusIndex:
        """An index of other points over the same locations and radii (rows as in this one)."""
        return RadiusIndex(self.location_rows, points, days, flags, self.radii)

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes) + (0 if self._before is None else int(self._before.nbytes))

    def rows_of(self, locations: np.ndarray) -> np.ndarray:
        """Each location's row in the index, or -1 for a location it does not hold (exact match)."""
        return self.location_rows.rows_of(locations)

    def count(
        self, rows: np.ndarray, first_day: int, end_day: int
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Per radius: points, and flagged points, within it of each indexed location row, dated in
        [first_day, end_day)."""
        # Every bound of every class of every place in one search, in increasing order: numpy starts
        # each needle's search where the previous one ended, so the bounds of one place cost a few
        # steps near each other, where separate searches each walk the whole array (~4x the time).
        places, inverse = np.unique(rows, return_inverse=True)
        low_day = min(max(first_day - self._day0, 0), self._span - 1)
        high_day = min(max(end_day - self._day0, 0), self._span - 1)
        runs = places.astype(np.int64)[:, np.newaxis] * self._classes + np.arange(self._classes)
        bounds = (runs * self._span)[:, :, np.newaxis] + np.array([low_day, high_day])
        found = np.searchsorted(self._keys, bounds.ravel().astype(self._keys.dtype))
        if self._before is not None:  # keys kept once: positions to how many keys lie before
            found = self._before[found]
        per_class = np.diff(found.reshape(-1, 2), axis=1).reshape(len(places), self._classes)
        result: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for band, radius in enumerate(self.radii):  # a radius counts its band and every smaller one
            within = per_class[:, : 2 * (band + 1)]
            result[radius] = (within.sum(axis=1)[inverse], within[:, 1::2].sum(axis=1)[inverse])
        return result


class StackedRadiusIndex:
    """A first index and one of points added since, over the same locations: counted as one."""

    def __init__(self, base: RadiusIndex, added: RadiusIndex) -> None:
        self.base, self.added = base, added
        self.location_rows = base.location_rows

    def rows_of(self, locations: np.ndarray) -> np.ndarray:
        return self.base.rows_of(locations)

    def count(
        self, rows: np.ndarray, first_day: int, end_day: int
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        base = self.base.count(rows, first_day, end_day)
        added = self.added.count(rows, first_day, end_day)
        return {
            radius: (totals + added[radius][0], hits + added[radius][1])
            for radius, (totals, hits) in base.items()
        }


def count_unindexed(
    locations: np.ndarray, points: np.ndarray, flags: np.ndarray | None, radii: tuple[float, ...]
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per radius: points, and flagged points, within it of each location, without an index (few
    points), each pair decided as the index decides it."""
    ordered = tuple(sorted(set(radii)))
    band = np.empty(0, dtype=np.int64)
    rows = columns = band
    if len(points) and len(locations):
        rows, columns, band = _pairs_by_band(locations, cKDTree(points), points, ordered)
    flagged = flags[columns] if flags is not None else np.zeros(len(columns), dtype=bool)
    result: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for index, radius in enumerate(ordered):  # band b: within radii[b] and no smaller radius
        inside = band <= index
        result[radius] = (
            np.bincount(rows[inside], minlength=len(locations)).astype(np.int64),
            np.bincount(rows[inside & flagged], minlength=len(locations)).astype(np.int64),
        )
    return result


def _pairs_by_band(
    locations: np.ndarray, point_tree: cKDTree, points: np.ndarray, radii: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(location row, point column, band) of each pair within the largest radius; band b: within
    radii[b] and no smaller one, beyond every radius when b == len(radii). Candidates come from the
    trees a hair beyond the largest radius; inclusion is decided here, by the squared distance, the
    same way for the index and for points counted directly."""
    found = cKDTree(locations).sparse_distance_matrix(
        point_tree, radii[-1] * (1 + 1e-9), output_type="ndarray"
    )
    rows, columns = found["i"].astype(np.int64), found["j"].astype(np.int64)
    radii_squared = np.array([radius * radius for radius in radii])
    band = np.searchsorted(radii_squared, squared_distances(locations[rows], points[columns]))
    return rows, columns, band


def _morton_codes(points: np.ndarray, bits: int = 10) -> np.ndarray:
    """Each point's place on a Z-order (Morton) curve over the points' bounding box: its coordinates'
    bits interleaved, `bits` a coordinate (NaN coordinates at the curve's start)."""
    codes = np.zeros(len(points), dtype=np.uint64)
    if not len(points):
        return codes
    low = np.nanmin(points, axis=0)
    span = np.nanmax(points, axis=0) - low
    scaled = np.nan_to_num((points - low) / np.where(span > 0, span, 1.0)) * ((1 << bits) - 1)
    cells, width, one = scaled.astype(np.uint64), points.shape[1], np.uint64(1)
    for bit in range(bits):
        for axis in range(width):
            codes |= ((cells[:, axis] >> np.uint64(bit)) & one) << np.uint64(bit * width + axis)
    return codes


def _as_bytes(points: np.ndarray) -> np.ndarray:
    """Each row of a float array as one opaque value (its bytes), comparable and sortable."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    width = points.dtype.itemsize * points.shape[1]
    return points.view(np.dtype((np.void, width))).ravel()


def _compacted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted keys, each kept once with how many keys precede it, when that takes less memory (many
    points at one place on one day: a test's or a soak's posted outcomes); else as they are."""
    if len(keys) < 2:
        return keys, None
    changes = keys[1:] != keys[:-1]
    if 2 * (1 + np.count_nonzero(changes)) > len(keys):  # (without the positions' 8 bytes a key)
        return keys, None
    first = np.flatnonzero(np.concatenate(([True], changes)))
    before = np.append(first, len(keys)).astype(np.int64 if len(keys) >= 2**31 else np.int32)
    return keys[first], before


def _sorted(parts: list[np.ndarray], key_type: type) -> np.ndarray:
    keys = np.concatenate(parts) if parts else np.empty(0, dtype=key_type)
    parts.clear()  # the chunks' memory back before sorting
    keys.sort(kind="quicksort")  # in place: equal keys are interchangeable, so no stable sort's buffer
    return keys
