"""A score body as Parquet (`Content-Type: application/vnd.apache.parquet`): one column per feature,
one row per record, as a data team's `frame.to_parquet(buffer, compression=None)` writes it.

A JSON batch spends most of its time turning text into Python floats (~35 ms for 10,000 Chicago
records, however the JSON is laid out); Parquet's columns become the model's arrays in ~5 ms.

What is checked before any data is read, from the file's footer: that it is Parquet, that no column
is compressed (a compressed page can declare any size, so a small body could expand without bound;
uncompressed, the data can be no larger than the body, which the body limit bounds), the row count
(so 413 comes before reading), and each column's name and type. Categories are read as dictionaries
and each distinct value converted once, so a long value repeated in every row is not copied per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.platform.errors import InvalidRequest, MalformedBody, Problem, UnsupportedMediaType
from app.scoring.bodies import BodyFormat
from app.scoring.bodies.records import MAX_PROBLEMS, check_record_count
from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch

if TYPE_CHECKING:
    from app.platform.registry import LoadedModel

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
# What pyarrow raises for a body that is not a readable Parquet file (ArrowInvalid and
# ArrowNotImplementedError are ValueError and NotImplementedError subclasses; IO errors are OSError).
_UNREADABLE = (pa.ArrowException, OSError, ValueError, NotImplementedError, IndexError, KeyError)


def open_parquet(body: bytes, layout: FeatureLayout) -> pq.ParquetFile:
    """The file behind its footer (nothing of its data read yet); 400 when it is not Parquet. Its
    category columns will be read as dictionaries."""
    try:
        footer = pq.ParquetFile(pa.BufferReader(body))
        # pyarrow refuses a dictionary column the file does not have, so name only those it has.
        categories = [name for name in footer.schema_arrow.names if name in set(layout.categorical)]
        return pq.ParquetFile(pa.BufferReader(body), metadata=footer.metadata, read_dictionary=categories)
    except _UNREADABLE as error:
        raise MalformedBody(f"body is not a Parquet file ({type(error).__name__})") from None


def parquet_batch(file: pq.ParquetFile, layout: FeatureLayout) -> RecordBatch:
    """The file's rows as the model's arrays, or 415/422/400 naming what is wrong with it."""
    _refuse_compression(file)
    schema = file.schema_arrow
    _check_columns(schema, layout)
    try:
        table = file.read()
    except _UNREADABLE as error:
        raise MalformedBody(f"the Parquet data could not be read ({type(error).__name__})") from None
    rows = table.num_rows
    numeric = np.full((rows, len(layout.numeric)), np.nan)
    for j, name in enumerate(layout.numeric):
        if name in schema.names:
            values = table.column(name).cast(pa.float64(), safe=False)  # int64 past 2**53: nearest float
            numeric[:, j] = values.to_numpy(zero_copy_only=False)  # nulls (and NaN) are missing
    _refuse_infinities(numeric, layout)
    categories = tuple(
        _category_values(table.column(name)) if name in schema.names else [MISSING_CATEGORY] * rows
        for name in layout.categorical
    )
    return RecordBatch(numeric=numeric, categorical=categories)


def _refuse_compression(file: pq.ParquetFile) -> None:
    metadata = file.metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for k in range(row_group.num_columns):
            if row_group.column(k).compression != "UNCOMPRESSED":
                raise UnsupportedMediaType(
                    "send Parquet without compression (pandas: frame.to_parquet(buffer, compression=None)); "
                    "compressed columns are refused because they could expand without bound"
                )


def _check_columns(schema: pa.Schema, layout: FeatureLayout) -> None:
    categorical = set(layout.categorical)
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, field in enumerate(schema):
        problem = None
        if field.name.startswith("__index_level_"):
            problem = "a pandas index, not a feature: write the frame with index=False"
        elif field.name not in layout.known:
            problem = "unknown feature; see the model's feature_schema"
        elif field.name in seen:
            problem = "repeats an earlier column"
        elif field.name in categorical and not _is_text(field.type):
            problem = "must be strings (a category)"
        elif field.name not in categorical and not _is_number(field.type):
            problem = "must be numbers (an integer or floating-point column)"
        seen.add(field.name)
        if problem is not None:
            problems.append(Problem(("body", "columns", i), problem))
    if problems:
        message = f"{len(problems)} problem(s) in the Parquet columns"
        raise InvalidRequest(message, tuple(problems[:MAX_PROBLEMS]))


def _is_number(kind: pa.DataType) -> bool:
    # Booleans are refused, as in JSON (true is not a number there either).
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind))


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)
    )


def _refuse_infinities(numeric: np.ndarray, layout: FeatureLayout) -> None:
    infinite = np.argwhere(np.isinf(numeric))[:MAX_PROBLEMS]
    if len(infinite):
        problems = tuple(
            Problem(("records", int(row), layout.numeric[int(j)]), "must be a finite number")
            for row, j in infinite.tolist()
        )
        raise InvalidRequest(f"{len(problems)} invalid field(s) in records", problems)


def _category_values(column: pa.ChunkedArray) -> list[str]:
    """A category column's values, each distinct one converted once and shared by its rows."""
    values: list[str] = []
    for chunk in column.chunks:
        if pa.types.is_null(chunk.type):
            values += [MISSING_CATEGORY] * len(chunk)
            continue
        lookup: list[Any] = [MISSING_CATEGORY if v is None else v for v in chunk.dictionary.to_pylist()]
        lookup.append(MISSING_CATEGORY)  # where a row is null
        indices = chunk.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)
        values += [lookup[i] for i in indices.tolist()]
    return values


def score_parquet(model: LoadedModel, body: bytes, max_records: int) -> list[dict[str, Any]]:
    """The answers to a Parquet score body."""
    file = open_parquet(body, model.layout)
    check_record_count(file.metadata.num_rows, max_records)  # from the footer, before any data is read
    batch = parquet_batch(file, model.layout)
    return model.completeness.annotate_batch(model.score_batch(batch), batch)


# Always in a worker thread, however small: one record costs pyarrow ~0.5 ms to read.
PARQUET_BODY = BodyFormat(
    media_type=PARQUET_MEDIA_TYPE,
    score=score_parquet,
    openapi={
        "schema": {
            "type": "string",
            "format": "binary",
            "description": "One column per feature (any subset, any order), one row per record, "
            "no compression: frame.to_parquet(buffer, compression=None)",
        }
    },
    inline=False,
)
