"""Turn JSON records into model input arrays without pandas, naming every bad field.

A record is a JSON object of feature name -> value. A missing field is treated as null: numbers become
NaN (the model imputes them, as in training) and categories become "Unknown" (what the feature
builder writes for a blank category). Unknown field names, wrong types and non-finite numbers are
refused with the record index and field name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from app.exceptions import InvalidRequest, Problem

# training/features/establishment.py fills a blank facility type or risk category with this value.
MISSING_CATEGORY = "Unknown"
MAX_PROBLEMS = 50  # enough to fix a request; bounded so a bad 10,000-record batch gets a small answer

_NUMBER_TYPES = frozenset({float, int, type(None)})
_MAX_FLOAT = int(sys.float_info.max)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureLayout:
    """A bundle's input schema split by type, in the estimator's column order."""

    names: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    known: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset(self.names))

    @classmethod
    def from_schema(cls, schema: Sequence[dict[str, Any]]) -> FeatureLayout:
        names = tuple(str(entry["name"]) for entry in schema)
        categorical = tuple(str(e["name"]) for e in schema if e.get("type") == "category")
        numeric = tuple(name for name in names if name not in set(categorical))
        return cls(names=names, numeric=numeric, categorical=categorical)


@dataclass(frozen=True)
class RecordBatch:
    """Validated records: numbers as an (n, numeric) float matrix, categories as one list per column."""

    numeric: FloatArray
    categorical: tuple[list[str], ...]

    def __len__(self) -> int:
        return int(self.numeric.shape[0])


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, index: int, name: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(("records", index, name), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidRequest(f"{len(self.items)} invalid field(s) in records", tuple(self.items))


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda record: (record[only],)
    return itemgetter(*names)


def parse_records(records: Sequence[Any], layout: FeatureLayout) -> RecordBatch:
    """Validate `records` against `layout` and return them as arrays; raise InvalidRequest otherwise."""
    problems = _Problems()
    numeric_of = _getter(layout.numeric) if layout.numeric else (lambda record: ())
    rows: list[tuple[Any, ...]] = []
    categorical: tuple[list[str], ...] = tuple([] for _ in layout.categorical)
    # One pass per record with C-level helpers (itemgetter, set(map(type))): the per-field loops
    # below run only for records that are incomplete or wrong.
    for index, record in enumerate(records):
        if type(record) is not dict:
            problems.items.append(Problem(("records", index), "must be an object of feature -> value"))
            continue
        if not record.keys() <= layout.known:
            for name in sorted(record.keys() - layout.known):
                problems.add(index, name, "unknown field; see the model's feature_schema")
            continue
        try:
            values = numeric_of(record)
        except KeyError:
            values = tuple(map(record.get, layout.numeric))
        if not set(map(type, values)) <= _NUMBER_TYPES:
            for name, value in zip(layout.numeric, values, strict=True):
                if type(value) not in _NUMBER_TYPES:
                    problems.add(index, name, "must be a number or null")
        rows.append(values)
        for name, column in zip(layout.categorical, categorical, strict=True):
            value = record.get(name)
            if value is None:
                value = MISSING_CATEGORY
            elif type(value) is not str:
                problems.add(index, name, "must be a string or null")
            column.append(value)
    problems.raise_if_any()

    try:
        numeric = np.array(rows, dtype=np.float64).reshape(len(rows), len(layout.numeric))  # None -> NaN
    except OverflowError:
        numeric = _overflowing(rows, layout, problems)
    infinite = np.isinf(numeric)
    if infinite.any():
        for index, j in zip(*np.nonzero(infinite), strict=True):
            problems.add(int(index), layout.numeric[int(j)], "must be a finite number")
    problems.raise_if_any()
    return RecordBatch(numeric=numeric, categorical=categorical)


def _overflowing(rows: list[tuple[Any, ...]], layout: FeatureLayout, problems: _Problems) -> FloatArray:
    for index, values in enumerate(rows):
        for name, value in zip(layout.numeric, values, strict=True):
            if type(value) is int and abs(value) > _MAX_FLOAT:
                problems.add(index, name, "must be a finite number")
    problems.raise_if_any()
    raise AssertionError("unreachable: an OverflowError without an oversized integer")


def value_of(batch: RecordBatch, layout: FeatureLayout, row: int, name: str) -> float | str | None:
    """The input value of one feature for one record (NaN reported as None)."""
    if name in layout.categorical:
        return batch.categorical[layout.categorical.index(name)][row]
    value = float(batch.numeric[row, layout.numeric.index(name)])
    return None if np.isnan(value) else value
