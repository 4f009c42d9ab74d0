"""Turn JSON records into model input arrays without pandas, naming every bad field.

A record is a JSON object of feature name -> value. A missing field is treated as null: numbers become
NaN (the model imputes them, as in training) and categories become "Unknown" (what the feature
builder writes for a blank category). Unknown field names, wrong types and non-finite numbers are
refused with the record index and field name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from app.platform.errors import InvalidRequest, PayloadTooLarge, Problem
from app.scoring.types import MISSING_CATEGORY, FeatureLayout, FloatArray, RecordBatch, RecordRows

MAX_PROBLEMS = 50  # enough to fix a request; bounded so a bad 10,000-record batch gets a small answer

_NUMBER_TYPES = frozenset({float, int, type(None)})
_NONE = type(None)
_CATEGORY_TYPES = frozenset({str, _NONE})
_MAX_FLOAT = int(sys.float_info.max)


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, index: int, name: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(("records", index, name), message))

    def add_record(self, index: int, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(("records", index), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidRequest(f"{len(self.items)} invalid field(s) in records", tuple(self.items))


@lru_cache(maxsize=64)
def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda record: (record[only],)
    return itemgetter(*names)


def parse_records(records: Sequence[Any], layout: FeatureLayout) -> RecordBatch:
    """Validate `records` against `layout` and return them as arrays; raise InvalidRequest otherwise."""
    problems = _Problems()
    rows, categorical = _validated(records, layout, problems)
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


def parse_rows(records: Sequence[Any], layout: FeatureLayout) -> RecordRows:
    """`parse_records` for a few records, as Python values: the same checks and the same errors."""
    problems = _Problems()
    rows, categorical = _validated(records, layout, problems)
    for index, values in enumerate(rows):
        numbers = [value for value in values if value is not None]
        # max/min cannot pass over an infinity or an oversized integer (a NaN first in the list makes
        # both NaN, which fails the test too), so a record that passes needs no closer look.
        if numbers and not (min(numbers) >= -_MAX_FLOAT and max(numbers) <= _MAX_FLOAT):
            for j, value in enumerate(values):
                # NaN (possible in-process, never from JSON) means missing, as in the array path.
                if value is not None and value == value and not -_MAX_FLOAT <= value <= _MAX_FLOAT:
                    problems.add(index, layout.numeric[j], "must be a finite number")
    problems.raise_if_any()
    return RecordRows(numeric=rows, categorical=categorical)


_Parsed = tuple[list[tuple[Any, ...]], tuple[list[str], ...]]


def _validated(records: Sequence[Any], layout: FeatureLayout, problems: _Problems) -> _Parsed:
    parsed = _parse_complete(records, layout)
    rows, categorical = parsed if parsed is not None else _parse_each(records, layout, problems)
    problems.raise_if_any()
    return rows, categorical


def _parse_complete(records: Sequence[Any], layout: FeatureLayout) -> _Parsed | None:
    """The common case (every record has exactly the schema's fields, of the right types) in C-level
    passes over the whole batch (map, itemgetter, set of types); None sends the batch to the slow,
    field-by-field path that names each problem."""
    try:
        rows = list(map(_getter(layout.numeric), records)) if layout.numeric else [()] * len(records)
        columns = [list(map(itemgetter(name), records)) for name in layout.categorical]
        if set(map(len, records)) - {len(layout.names)}:
            return None  # all schema fields are present, so a longer record has an unknown field
    except (KeyError, TypeError, IndexError):
        return None
    if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
        return None
    categorical: list[list[str]] = []
    for column in columns:
        types = set(map(type, column))
        if not types <= _CATEGORY_TYPES:
            return None
        categorical.append(
            [MISSING_CATEGORY if v is None else v for v in column] if _NONE in types else column
        )
    return rows, tuple(categorical)


def _parse_each(records: Sequence[Any], layout: FeatureLayout, problems: _Problems) -> _Parsed:
    rows: list[tuple[Any, ...]] = []
    categorical: tuple[list[str], ...] = tuple([] for _ in layout.categorical)
    for index, record in enumerate(records):
        if type(record) is not dict:
            problems.add_record(index, "must be an object of feature -> value")
            continue
        for name in sorted(record.keys() - layout.known):
            problems.add(index, name, "unknown field; see the model's feature_schema")
        values = tuple(map(record.get, layout.numeric))
        for name, value in zip(layout.numeric, values, strict=True):
            if type(value) not in _NUMBER_TYPES:
                problems.add(index, name, "must be a number or null")
        rows.append(values)
        for name, column in zip(layout.categorical, categorical, strict=True):
            value = record.get(name)
            if type(value) not in _CATEGORY_TYPES:
                problems.add(index, name, "must be a string or null")
            column.append(MISSING_CATEGORY if value is None else value)
    return rows, categorical


def _overflowing(rows: list[tuple[Any, ...]], layout: FeatureLayout, problems: _Problems) -> FloatArray:
    for index, values in enumerate(rows):
        for name, value in zip(layout.numeric, values, strict=True):
            if type(value) is int and abs(value) > _MAX_FLOAT:
                problems.add(index, name, "must be a finite number")
    problems.raise_if_any()
    raise AssertionError("unreachable: an OverflowError without an oversized integer")



def records_of(body: Any, max_records: int) -> list[Any]:
    """The `records` list of a score request; 413 over the record limit, 422 for any other shape."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "body must be a JSON object",
            (Problem(("body",), 'expected {"records": [...]} or {"columns": [...], "data": [[...]]}'),),
        )
    extra = sorted(set(body) - {"records"})
    if extra:
        raise InvalidRequest(
            "unknown field(s) in body", tuple(Problem(("body", k), "unknown field") for k in extra)
        )
    records = body.get("records")
    if not isinstance(records, list):
        raise InvalidRequest(
            "records must be a list", (Problem(("body", "records"), "must be a list of objects"),)
        )
    check_record_count(len(records), max_records)
    return records


def check_record_count(count: int, max_records: int, field: str = "records") -> None:
    """422 for no records, 413 over the per-request limit; `field` holds them (records, or a table's data)."""
    if not count:
        raise InvalidRequest(f"{field} is empty", (Problem(("body", field), "send 1 or more records"),))
    if count > max_records:
        raise PayloadTooLarge(f"{count} records is over the limit of {max_records} per request")
