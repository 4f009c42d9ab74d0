"""Earlier tests near any point of the city's streets, for homes not in the known-homes table.

A home at an address the table does not hold (an interpolated house number, coordinates off the
table: most real homes) used to cost a k-d tree query over every test in the city per request, whose
scattered memory reads made it the largest part of such a request (bench/README.md). Here the city
is cut into small cells (40 m), and for each cell holding a known address the work that does not
depend on where in the cell the home is, is done once:

- the tests within `radius - h` of the cell's centre (`h` the farthest any point of the cell is from
  its centre) are within `radius` of every point of the cell: counted by one bisection, as
  `NeighbourCounts` counts a known home's;
- the tests within `radius + h` of the centre but not certain are the only others that can be within
  `radius`: each is checked with the tree's own distance test (squared chord distance against the
  squared radius, in the same order of terms).

The counts are so exactly the tree's (tests compare the two on every address point moved about).
A point in a cell with no known address takes the tree, as before. Everything here is city data.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from app.hospitals.known_homes import CHUNK, INT32_MIN, NeighbourCounts
from training.serving import EARTH_RADIUS_KM, to_xyz

CELL_KM = 0.04
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0
MARGIN_KM = 1e-9  # far above the rounding of a chord distance of a few hundred metres


class NearbyTests:
    """Per cell: the certain neighbours (counted by bisection) and the maybe ones (checked)."""

    def __init__(
        self,
        points: Sequence[tuple[float, float]],
        tree: cKDTree,
        radii_km: tuple[float, float],
        test_days: np.ndarray,
        test_elevated: np.ndarray,
        cell_km: float = CELL_KM,
    ) -> None:
        """`tree` holds the tests in the order of `test_days` (ascending); `points` are the known
        addresses (latitude, longitude), whose cells are the ones prepared."""
        latitudes = [lat for lat, _ in points]
        middle = math.radians(float(np.mean(latitudes))) if points else 0.0
        self._dlat = cell_km / KM_PER_DEGREE
        self._dlon = cell_km / (KM_PER_DEGREE * math.cos(middle))
        keys = sorted({self._key(lat, lon) for lat, lon in points})
        self._cells = {key: index for index, key in enumerate(keys)}
        rows = np.array([key[0] for key in keys], dtype=np.float64)
        columns = np.array([key[1] for key in keys], dtype=np.float64)
        centres = (
            to_xyz((rows + 0.5) * self._dlat, (columns + 0.5) * self._dlon) if keys else np.empty((0, 3))
        )
        half = self._half_diagonal(rows, columns, centres)
        block, address = radii_km
        self._block_r2, self._address_r2 = block * block, address * address
        self._certain = NeighbourCounts(tree, centres, max(block - half, 0.0), test_days, test_elevated)
        # Every test that may be within `block` of a point of the cell and is not certain, and every
        # test that may be within `address` (a radius smaller than the cell: none is certain).
        self._maybe_starts, self._maybe = self._maybe_lists(tree, centres, block, half)
        near_starts, near = _lists(tree, centres, address + half + MARGIN_KM)
        self._near_starts, self._near = _ints(near_starts), _ints(near)
        data = tree.data
        self._x, self._y, self._z = (array("d", data[:, axis].tolist()) for axis in range(3))
        self._days = array("i", np.maximum(test_days, INT32_MIN).astype(np.int32).tobytes())
        self._elevated = array("b", np.asarray(test_elevated, dtype=np.int8).tobytes())

    def __len__(self) -> int:
        return len(self._cells)

    def _key(self, latitude: float, longitude: float) -> tuple[int, int]:
        return math.floor(latitude / self._dlat), math.floor(longitude / self._dlon)

    def _half_diagonal(self, rows: np.ndarray, columns: np.ndarray, centres: np.ndarray) -> float:
        """The farthest (chord) distance of a cell's corner from its centre, over every cell, with a
        margin for the cell's curved sides and rounding."""
        if not len(rows):
            return 0.0
        farthest = 0.0
        for down, left in ((0, 0), (0, 1), (1, 0), (1, 1)):
            corners = to_xyz((rows + down) * self._dlat, (columns + left) * self._dlon)
            farthest = max(farthest, float(np.sqrt(((corners - centres) ** 2).sum(axis=1)).max()))
        return farthest * 1.001 + MARGIN_KM

    def _maybe_lists(
        self, tree: cKDTree, centres: np.ndarray, block: float, half: float
    ) -> tuple[array[int], array[int]]:
        outer_starts, outer = _lists(tree, centres, block + half + MARGIN_KM)
        if block - half > 0:  # drop the certain ones: one set difference over (cell, test) pairs
            inner_starts, inner = _lists(tree, centres, block - half)
            cells = np.arange(len(centres), dtype=np.int64)
            tests = len(tree.data)
            outer_cells = np.repeat(cells, np.diff(outer_starts))
            inner_keys = np.repeat(cells, np.diff(inner_starts)) * tests + inner
            kept = ~np.isin(outer_cells * tests + outer, inner_keys, assume_unique=True)
            outer = outer[kept]
            outer_starts = np.r_[0, np.cumsum(np.bincount(outer_cells[kept], minlength=len(centres)))]
        return _ints(outer_starts), _ints(outer)

    def counts(
        self, latitude: float, longitude: float, xyz: tuple[float, float, float], day: int
    ) -> tuple[int, int, int, int] | None:
        """(tests, elevated) at the address and within the block, dated before `day`, for a point
        (`xyz`: its `to_xyz` coordinates); None when its cell holds no known address."""
        cell = self._cells.get(self._key(latitude, longitude))
        if cell is None:
            return None
        px, py, pz = xyz
        x, y, z, days, elevated = self._x, self._y, self._z, self._days, self._elevated
        block_tests, block_elevated = self._certain.before(cell, day)
        for i in self._maybe[self._maybe_starts[cell] : self._maybe_starts[cell + 1]]:
            dx, dy, dz = x[i] - px, y[i] - py, z[i] - pz
            if days[i] < day and dx * dx + dy * dy + dz * dz <= self._block_r2:
                block_tests += 1
                block_elevated += elevated[i]
        address_tests = address_elevated = 0
        for i in self._near[self._near_starts[cell] : self._near_starts[cell + 1]]:
            dx, dy, dz = x[i] - px, y[i] - py, z[i] - pz
            if days[i] < day and dx * dx + dy * dy + dz * dz <= self._address_r2:
                address_tests += 1
                address_elevated += elevated[i]
        return address_tests, address_elevated, block_tests, block_elevated


def _lists(tree: cKDTree, centres: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Each centre's tests within `radius` (ascending), laid end to end, and where each list starts."""
    lengths, flat = [], []
    for start in range(0, len(centres), CHUNK):
        lists = tree.query_ball_point(centres[start : start + CHUNK], radius, return_sorted=True)
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        lengths.append(counts)
        flat.append(
            np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(counts.sum()))
        )
    if not lengths:
        return np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.r_[0, np.cumsum(np.concatenate(lengths))], np.concatenate(flat)


def _ints(values: np.ndarray) -> array[int]:
    """An array("i") (4 bytes an entry, nothing for the garbage collector to walk)."""
    return array("i", values.astype(np.int32).tobytes())
