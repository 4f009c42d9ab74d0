"""A ranked day's rows held as columns, a row's dict built when it is first read.

A ranked day holds every establishment in scope (~7,400 for Chicago) and a list reads a few dozen of
them. Building a dict (and packing its reasons' inputs as text) for every row took ~35 ms of the
GIL per new date, a sixth of ranking it; a cached day held 23.7 MB as dicts and holds 13.9 MB as
columns with its first 100 rows built (tracemalloc, Chicago, 7,405 rows).
A list process sends the columns whole (`encode`/`decode`: numbers as raw float64, no row built).
A row, once read, is the same dict object every time: a list words its reasons in place
(app/inspections/reasons.py `worded_reasons`), and the day's next lists reuse the words.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

Row = dict[str, Any]
REASONS = "reasons"


@dataclass(frozen=True)
class PendingReasons:
    """Each row's reasons before they are put in words: which groups give them (largest net
    contribution first) and the row's inputs, in the form `worded_reasons` reads (`row(i)`)."""

    group_names: tuple[str, ...]
    groups: np.ndarray  # (rows, top reasons) positions in group_names
    totals: np.ndarray  # (rows, top reasons) float64: each group's net contribution
    packed: np.ndarray  # (rows, numeric inputs + features) float64: inputs, then contributions
    categories: tuple[np.ndarray, ...]  # per categorical input, an object array of the rows' values
    words: tuple[str, ...]  # the city's words for its severities

    def __len__(self) -> int:
        return len(self.packed)

    def row(self, index: int) -> dict[str, Any]:
        """Row `index`'s pending reasons. Inputs and contributions as float64 bytes in base64:
        exact and JSON-safe (NaN too), whichever process ranked the day."""
        names = self.group_names
        groups = zip(self.groups[index].tolist(), self.totals[index].tolist(), strict=True)
        return {
            "groups": [[names[k], total] for k, total in groups if total != 0.0],
            "inputs": base64.b64encode(self.packed[index].tobytes()).decode("ascii"),
            "categories": [values[index] for values in self.categories],
            "words": list(self.words),
        }

    def take(self, order: np.ndarray) -> PendingReasons:
        """The same reasons with the rows in `order`."""
        return PendingReasons(
            self.group_names,
            self.groups[order],
            self.totals[order],
            self.packed[order],
            tuple(values[order] for values in self.categories),
            self.words,
        )


class RankedRows(Sequence[Row]):
    """Rows in rank order: `names` are each row's keys in order, `columns` their values (object
    arrays of JSON-ready values; None where the name is `reasons`, which `reasons` holds)."""

    def __init__(
        self, names: tuple[str, ...], columns: tuple[np.ndarray | None, ...], reasons: PendingReasons
    ) -> None:
        if len(names) != len(columns):
            raise ValueError(f"{len(names)} names for {len(columns)} columns")
        self.names = names
        self._columns = columns
        self._reasons = reasons
        self._rows: list[Row | None] = [None] * len(reasons)

    @classmethod
    def empty(cls) -> RankedRows:
        nothing = np.empty((0, 0))
        return cls((), (), PendingReasons((), nothing, nothing, nothing, (), ()))

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        row = self._rows[index]
        if row is None:  # two threads may both build a row: equal values, either kept
            row = self._rows[index] = self._build(index)
        return row

    def __iter__(self) -> Iterator[Row]:
        for position in range(len(self)):
            yield self[position]

    def column(self, name: str) -> list[Any]:
        """Every row's value of `name` (not `reasons`), without building the rows."""
        values = self._columns[self.names.index(name)]
        if values is None:
            raise KeyError(name)
        values_list: list[Any] = values.tolist()
        return values_list

    def _build(self, index: int) -> Row:
        return {
            name: self._reasons.row(index) if values is None else values[index]
            for name, values in zip(self.names, self._columns, strict=True)
        }

    def encode(self) -> bytes:
        """The columns as a list process sends them (pickle between a server and its own fork:
        numbers as raw bytes, no row built on either side)."""
        return pickle.dumps((self.names, self._columns, self._reasons), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def decode(cls, payload: bytes) -> RankedRows:
        names, columns, reasons = pickle.loads(payload)  # noqa: S301 (our own forked child's bytes)
        return cls(names, columns, reasons)
