"""A ranked day's rows held as columns, a row's dict built when it is first read.

A ranked day holds every establishment in scope (~7,400 for Chicago) and a list reads a few dozen of
them. Building a dict (and packing its reasons' inputs as text) for every row took ~35 ms of the
GIL per new date, a sixth of ranking it; a cached day held 23.7 MB as dicts and holds 13.9 MB as
columns with its first 100 rows built (tracemalloc, Chicago, 7,405 rows).
Columns are Arrow arrays of JSON-ready values (text, numbers, ISO dates, nulls): a list process
sends them as buffers (`encode`/`decode`, no row built on either side). As object arrays of Python
strings they took ~16 ms of the list process's time to convert and pickle a date and ~13 ms of the
server's GIL to unpickle; as Arrow arrays ~1 ms and 0.1 ms (Chicago, 7,405 rows).
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
import pandas as pd
import pyarrow as pa

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
    categories: tuple[pa.Array, ...]  # per categorical input, the rows' values
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
            "categories": [values[index].as_py() for values in self.categories],
            "words": list(self.words),
        }

    def take(self, order: np.ndarray) -> PendingReasons:
        """The same reasons with the rows in `order`."""
        return PendingReasons(
            self.group_names,
            self.groups[order],
            self.totals[order],
            self.packed[order],
            tuple(values.take(order) for values in self.categories),
            self.words,
        )


def json_column(values: pd.Series | np.ndarray | Sequence[Any]) -> pa.Array:
    """A column's values as a ranked day holds them: dates as ISO text, missing values as nulls
    (NaN too), numbers as numbers."""
    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values):
        days = pa.array(values.to_numpy(dtype="datetime64[D]"), from_pandas=True)
        return days.cast(pa.string())
    try:
        column = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # values of mixed kinds: each as its text
        texts = pd.Series(values, dtype=object)
        column = pa.array([None if pd.isna(each) else str(each) for each in texts], type=pa.string())
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class RankedRows(Sequence[Row]):
    """Rows in rank order: `names` are each row's keys in order, `columns` their values (Arrow
    arrays of JSON-ready values, `json_column`; None where the name is `reasons`, which `reasons`
    holds)."""

    def __init__(
        self, names: tuple[str, ...], columns: tuple[pa.Array | None, ...], reasons: PendingReasons
    ) -> None:
        if len(names) != len(columns):
            raise ValueError(f"{len(names)} names for {len(columns)} columns")
        self.names = names
        self._columns = columns
        self._reasons = reasons
        self._rows: list[Row | None] = [None] * len(reasons)
        self._lists: dict[str, list[Any]] = {}  # columns read whole, as Python values

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
        """Every row's value of `name` (not `reasons`), without building the rows; the same list
        each time (not to be modified)."""
        known = self._lists.get(name)
        if known is not None:
            return known
        values = self._columns[self.names.index(name)]
        if values is None:
            raise KeyError(name)
        as_list: list[Any] = values.to_pylist()
        self._lists[name] = as_list  # two threads may both convert: equal lists, either kept
        return as_list

    def _build(self, index: int) -> Row:
        row: Row = {}
        for name, values in zip(self.names, self._columns, strict=True):
            if values is None:
                row[name] = self._reasons.row(index)
            elif name in self._lists:  # read whole already (a filter's column): no Arrow scalar
                row[name] = self._lists[name][index]
            else:
                row[name] = values[index].as_py()
        return row

    def encode(self) -> bytes:
        """The columns as a list process sends them (pickle between a server and its own fork:
        Arrow buffers and raw numbers, no row built on either side)."""
        return pickle.dumps((self.names, self._columns, self._reasons), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def decode(cls, payload: bytes) -> RankedRows:
        names, columns, reasons = pickle.loads(payload)  # noqa: S301 (our own forked child's bytes)
        return cls(names, columns, reasons)
