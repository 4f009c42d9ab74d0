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
  `radius`. They are kept in order of distance from the centre: for a point `offset` from the
  centre, those within `radius - offset` of it are within `radius` of the point and those beyond
  `radius + offset` are not (the triangle inequality, with a margin far above rounding), so only
  the ones between are checked, with the tree's own distance test (squared chord distance against
  the squared radius, in the same order of terms). When every test of the cell predates the day
  (today, for the usual request), the certain ones are counted without reading their dates.

The counts are so exactly the tree's (tests compare the two on every address point moved about).
A point in a cell not prepared takes the tree, as before. Everything here is city data.
"""

from __future__ import annotations

import bisect
import itertools
import math
from array import array

import numpy as np
from scipy.spatial import cKDTree

from app.hospitals.known_homes import CHUNK, INT32_MIN, NeighbourCounts
from training.serving import EARTH_RADIUS_KM, to_xyz

CELL_KM = 0.04
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0
MARGIN_KM = 1e-9  # far above the rounding of a chord distance of a few hundred metres
# A cell's stored distances are float32: within 1.5e-8 km of the float64 distance up to 300 m, 6e-8 km
# up to 1 km; 2e-7 km (0.2 mm), plus MARGIN_KM, keeps every bound on the safe side.
REACH_MARGIN_KM = 2e-7 + MARGIN_KM


class NearbyTests:
    """Per cell: the certain neighbours (counted by bisection) and the maybe ones (checked)."""

    def __init__(
        self,
        points: np.ndarray,
        tree: cKDTree,
        radii_km: tuple[float, float],
        test_days: np.ndarray,
        test_elevated: np.ndarray,
        cell_km: float = CELL_KM,
    ) -> None:
        """`tree` holds the tests in the order of `test_days` (ascending); `points` (rows of latitude,
        longitude) are the known addresses, whose cells are the ones prepared."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        middle = math.radians(float(points[:, 0].mean())) if len(points) else 0.0
        self._dlat = cell_km / KM_PER_DEGREE
        self._dlon = cell_km / (KM_PER_DEGREE * math.cos(middle))
        # A key is row * 2**32 + column (one int, not a tuple: ~100,000 cells): unique for any column
        # within int32, which a longitude is for every cell size above a millimetre. numpy's floor of
        # the quotient is `_key`'s (IEEE division either way).
        row_of = np.floor(points[:, 0] / self._dlat).astype(np.int64)
        column_of = np.floor(points[:, 1] / self._dlon).astype(np.int64)
        keys = np.unique((row_of << 32) + column_of)
        self._cells = dict(zip(keys.tolist(), range(len(keys)), strict=True))
        row_numbers = (keys + 2**31) >> 32
        rows, columns = row_numbers.astype(np.float64), (keys - (row_numbers << 32)).astype(np.float64)
        self._rows, self._columns = rows, columns
        centres = (
            to_xyz((rows + 0.5) * self._dlat, (columns + 0.5) * self._dlon) if len(keys) else np.empty((0, 3))
        )
        half = self._half_diagonal(rows, columns, centres)
        block, address = radii_km
        self._block, self._address = block, address
        self._block_r2, self._address_r2 = block * block, address * address
        self._certain = NeighbourCounts(tree, centres, max(block - half, 0.0), test_days, test_elevated)
        days = np.maximum(test_days, INT32_MIN).astype(np.int32)
        # Every test that may be within `block` of a point of the cell and is not certain, and every
        # test that may be within `address` (a radius smaller than the cell: none is certain); each
        # cell's list in order of distance from its centre (`reach`), so a point's exact checks are
        # only those whose reach the point's own offset from the centre leaves undecided.
        maybe_starts, maybe = self._maybe_lists(tree, centres, block, half)
        self._maybe_starts, self._maybe, self._maybe_reach, latest_maybe = _by_reach(
            maybe_starts, maybe, tree.data, centres, days
        )
        # Elevated ones among a cell's first k maybe-tests: a running count over the lists.
        running = np.r_[0, np.cumsum(np.asarray(test_elevated, dtype=np.int64)[np.asarray(self._maybe)])]
        self._maybe_elevated = array("i", running.astype(np.int32).tobytes())
        near_starts, near = _lists(tree, centres, address + half + MARGIN_KM)
        self._near_starts, self._near, self._near_reach, latest_near = _by_reach(
            near_starts, near, tree.data, centres, days
        )
        # A cell whose tests all predate the day (the usual case: today) counts its certain maybe-tests
        # by the running count, without reading their dates.
        self._latest = array("i", np.maximum(latest_maybe, latest_near).tobytes())
        self._cx, self._cy, self._cz = (
            array("d", np.ascontiguousarray(centres[:, axis]).tobytes()) for axis in range(3)
        )
        # Each test's x, y, z and elevated (0 or 1) side by side, so one test's distance and flag are
        # read from one place rather than four arrays (a request's tests lie scattered over them).
        self._tests = array("d", np.column_stack((tree.data, test_elevated)).astype(np.float64).tobytes())
        self._days = array("i", days.tobytes())

    def __len__(self) -> int:
        return len(self._cells)

    def _key(self, latitude: float, longitude: float) -> int:
        return (math.floor(latitude / self._dlat) << 32) + math.floor(longitude / self._dlon)

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
    ) -> tuple[np.ndarray, np.ndarray]:
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
        return outer_starts, outer

    def cell_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each prepared cell's (south, west, north, east), in degrees, in cell order."""
        rows, columns = self._rows, self._columns
        return rows * self._dlat, columns * self._dlon, (rows + 1) * self._dlat, (columns + 1) * self._dlon

    def cell(self, latitude: float, longitude: float) -> int | None:
        """The prepared cell a point lies in; None when its cell was not prepared."""
        return self._cells.get(self._key(latitude, longitude))

    def counts(self, cell: int, xyz: tuple[float, float, float], day: int) -> tuple[int, int, int, int]:
        """(tests, elevated) at the address and within the block, dated before `day`, for a point in
        `cell` (`xyz`: its `to_xyz` coordinates)."""
        px, py, pz = xyz
        dx, dy, dz = px - self._cx[cell], py - self._cy[cell], pz - self._cz[cell]
        offset = math.sqrt(dx * dx + dy * dy + dz * dz)  # from the cell's centre
        tests, days, maybe, reach = self._tests, self._days, self._maybe, self._maybe_reach
        first, end = self._maybe_starts[cell], self._maybe_starts[cell + 1]
        # Within block - offset of the centre: within the block of the point (triangle inequality);
        # beyond block + offset: outside it. Only the tests between need their distance worked out.
        inside = bisect.bisect_left(reach, self._block - offset - REACH_MARGIN_KM, first, end)
        undecided = bisect.bisect_right(reach, self._block + offset + REACH_MARGIN_KM, inside, end)
        block_tests, block_elevated = self._certain.before(cell, day)
        every_day = self._latest[cell] < day  # every test of the cell's lists is dated before `day`
        if every_day:
            block_tests += inside - first
            block_elevated += self._maybe_elevated[inside] - self._maybe_elevated[first]
        else:
            for i in maybe[first:inside]:
                if days[i] < day:
                    block_tests += 1
                    block_elevated += tests[4 * i + 3] > 0.0
        for i in maybe[inside:undecided]:
            j = 4 * i
            dx, dy, dz = tests[j] - px, tests[j + 1] - py, tests[j + 2] - pz
            if dx * dx + dy * dy + dz * dz <= self._block_r2 and (every_day or days[i] < day):
                block_tests += 1
                block_elevated += tests[j + 3] > 0.0
        address_tests = address_elevated = 0
        first, end = self._near_starts[cell], self._near_starts[cell + 1]
        end = bisect.bisect_right(self._near_reach, self._address + offset + REACH_MARGIN_KM, first, end)
        for i in self._near[first:end]:
            j = 4 * i
            dx, dy, dz = tests[j] - px, tests[j + 1] - py, tests[j + 2] - pz
            if dx * dx + dy * dy + dz * dz <= self._address_r2 and (every_day or days[i] < day):
                address_tests += 1
                address_elevated += tests[j + 3] > 0.0
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


def _by_reach(
    starts: np.ndarray, tests: np.ndarray, xyz: np.ndarray, centres: np.ndarray, days: np.ndarray
) -> tuple[array[int], array[int], array[float], np.ndarray]:
    """Each cell's tests ordered by their distance from its centre (ties by index): the starts, the
    tests, their distances, and each cell's latest test day (int32's least for an empty list)."""
    cells = np.repeat(np.arange(len(centres), dtype=np.int64), np.diff(starts))
    reach = np.sqrt(((xyz[tests] - centres[cells]) ** 2).sum(axis=1))
    order = np.lexsort((tests, reach, cells))
    latest = np.full(len(centres), INT32_MIN, dtype=np.int32)
    np.maximum.at(latest, cells, days[tests])
    # Four bytes a distance (REACH_MARGIN_KM covers float32's rounding, which keeps the order).
    return _ints(starts), _ints(tests[order]), array("f", reach[order].astype(np.float32).tobytes()), latest
