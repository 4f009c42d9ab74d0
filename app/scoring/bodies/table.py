"""The general path for a table body, `{"columns": [...], "data": [[...], ...]}`: its shape checked
and each problem named, then its rows read as records (column name -> value), so every value is
checked by `app.scoring.bodies.records` with the records form's rules and words.

The typed decoder (app/scoring/bodies/typed.py) reads valid table bodies faster; this path reads
what it refuses, and so decides the errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.platform.errors import InvalidRequest, Problem
from app.scoring.bodies.records import MAX_PROBLEMS
from app.scoring.types import FeatureLayout

TABLE_FIELDS = frozenset({"columns", "data"})


def is_table(body: Any) -> bool:
    """Whether a parsed body is meant as a table: an object with columns or data and no records."""
    return isinstance(body, Mapping) and "records" not in body and not TABLE_FIELDS.isdisjoint(body)


def table_records(body: Mapping[str, Any], layout: FeatureLayout) -> list[dict[str, Any]]:
    """The rows of a table body as records, or InvalidRequest naming each problem of its shape
    (the values themselves are checked later, as records)."""
    unknown = sorted(set(body) - TABLE_FIELDS)
    if unknown:
        raise InvalidRequest(
            "unknown field(s) in body", tuple(Problem(("body", k), "unknown field") for k in unknown)
        )
    columns, data = body.get("columns"), body.get("data")
    problems = [*_column_problems(columns, layout), *_data_problems(data, columns)]
    if problems:
        raise InvalidRequest(f"{len(problems)} problem(s) in the table", tuple(problems[:MAX_PROBLEMS]))
    assert isinstance(columns, list) and isinstance(data, list)  # checked above
    return [dict(zip(columns, row, strict=True)) for row in data]


def _column_problems(columns: Any, layout: FeatureLayout) -> list[Problem]:
    if not isinstance(columns, list):
        return [Problem(("body", "columns"), "must be a list of feature names")]
    problems, seen = [], set()
    for i, name in enumerate(columns):
        if not isinstance(name, str):
            problem = "must be a feature name (a string)"
        elif name not in layout.known:
            problem = "unknown feature; see the model's feature_schema"
        elif name in seen:
            problem = "repeats an earlier column"
        else:
            seen.add(name)
            continue
        problems.append(Problem(("body", "columns", i), problem))
    return problems


def _data_problems(data: Any, columns: Any) -> list[Problem]:
    if not isinstance(data, list):
        return [Problem(("body", "data"), "must be a list of rows (lists of values, one per column)")]
    width = len(columns) if isinstance(columns, list) else None
    problems = []
    for i, row in enumerate(data):
        if not isinstance(row, list):
            problems.append(Problem(("body", "data", i), "must be a list of values, one per column"))
        elif width is not None and len(row) != width:
            problems.append(Problem(("body", "data", i), f"has {len(row)} values for {width} columns"))
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems


def as_table_problem(error: InvalidRequest) -> InvalidRequest:
    """A records-path error about a table's rows, located in the table: record i is row i of data."""
    problems = tuple(
        Problem(("data", *loc[1:]) if loc[:1] == ("records",) else loc, problem.message)
        for problem in error.problems
        for loc in [problem.loc]
    )
    return InvalidRequest(str(error).replace("in records", "in data"), problems)
