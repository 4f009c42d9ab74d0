"""Decode a score body `{"records": [...]}` straight into the model's input, with msgspec.

A generic JSON parser builds a dict per record and a str key and a float per field before anything is
checked: for a 10,000-record batch of the Chicago model (60 fields, 18 MB) that was ~60 ms of orjson
plus ~40 ms of validation. Here the body is decoded against a type made from the bundle's feature
schema (every field `float | null` or `str | null`, missing means null, no other field allowed), so
the bytes become typed values in one C pass (~25 ms), already checked.

A table body, `{"columns": [...], "data": [[...], ...]}` (pandas' `to_json(orient="split",
index=False)`), is decoded the same way: its column names first, then each row straight into a
tuple typed by that column order. It is a fifth to a third of the records form's bytes for the
Chicago model, but decodes in about the same time: turning 600,000 JSON numbers into floats is
most of either (25–35 ms at different moments here), not matching the field names.

This is the fast path only. Any body it refuses (a wrong type, an unknown field, an out-of-range
number, broken JSON) returns None, and the caller reads the body with the general path
(`app.scoring.bodies.records`), which names every problem with its record index; so the errors, and the
answer to every valid body, are those of that path (tests/app/test_typed_records.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np

from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch, RecordRows


@dataclass(frozen=True, slots=True)
class TypedRecords:
    """Decoded records as tuples: the numeric fields in `layout.numeric` order, then the categories.
    `field` is where the body held them: "records", or "data" for a table."""

    rows: list[tuple[Any, ...]]
    layout: FeatureLayout
    field: str = "records"

    def __len__(self) -> int:
        return len(self.rows)

    def _categories(self) -> tuple[list[str], ...]:
        start = len(self.layout.numeric)
        columns = []
        for k in range(len(self.layout.categorical)):
            column = list(map(itemgetter(start + k), self.rows))
            columns.append([MISSING_CATEGORY if value is None else value for value in column])
        return tuple(columns)

    def batch(self) -> RecordBatch:
        """The records as arrays (`parse_records`' result): None becomes NaN."""
        p = len(self.layout.numeric)
        # One pass over the tuples into an object table, then one conversion of its numeric block
        # (None becomes NaN): ~14 ms for 10,000 Chicago records, against ~20 ms for slicing each
        # tuple and converting the slices. msgspec refuses numbers outside the float range, so
        # nothing here can be infinite.
        table = np.array(self.rows, dtype=object).reshape(len(self.rows), p + len(self.layout.categorical))
        numeric = table[:, :p].astype(np.float64)
        return RecordBatch(numeric=numeric, categorical=self._categories())

    def plain_rows(self) -> RecordRows:
        """The records as Python values (`parse_rows`' result), for a few records."""
        p = len(self.layout.numeric)
        return RecordRows(numeric=[row[:p] for row in self.rows], categorical=self._categories())


class _TableHeader(msgspec.Struct, forbid_unknown_fields=True):
    """A table body with its rows left undecoded until the column order gives them a type."""

    columns: list[str]
    data: msgspec.Raw


class BodyDecoder:
    """The typed decoder for one feature layout (built once per layout, see `decoder_for`)."""

    def __init__(self, layout: FeatureLayout) -> None:
        self.layout = layout
        ordered = (*layout.numeric, *layout.categorical)
        # Struct fields get safe identifiers and are renamed to the feature names, which need not
        # be Python identifiers (a city may name a feature "311_calls").
        fields: list[tuple[str, Any, Any]] = [
            (f"f{i}", (float | None) if i < len(layout.numeric) else (str | None), None)
            for i in range(len(ordered))
        ]
        record = msgspec.defstruct(
            "Record",
            fields,
            rename={f"f{i}": name for i, name in enumerate(ordered)},
            forbid_unknown_fields=True,
            gc=False,  # holds only floats, strings and None: no reference cycles to collect
        )
        body = msgspec.defstruct("ScoreBody", [("records", list[record])], forbid_unknown_fields=True)  # type: ignore[valid-type]
        self._decoder = msgspec.json.Decoder(body)

    def decode(self, body: bytes) -> TypedRecords | None:
        """The records of a valid body, or None: the general path then reads it and names the problems."""
        try:
            decoded = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            # A table body fails here at its first key, so trying it second costs the records form
            # nothing.
            return self._decode_table(body)
        records: list[msgspec.Struct] = decoded.records  # type: ignore[attr-defined]  # a made type
        return TypedRecords(rows=list(map(msgspec.structs.astuple, records)), layout=self.layout)

    def _decode_table(self, body: bytes) -> TypedRecords | None:
        try:
            header = _TABLE_HEADER.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        columns = tuple(header.columns)
        if not columns or len(set(columns)) < len(columns) or not self.layout.known.issuperset(columns):
            return None  # the general path names the column
        try:
            rows = _row_decoder(self.layout, columns).decode(header.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        ordered = (*self.layout.numeric, *self.layout.categorical)
        if columns != ordered:
            # Into layout order, a left-out column read from a None added at the end of each row.
            place = {name: k for k, name in enumerate(columns)}
            getter = itemgetter(*(place.get(name, len(columns)) for name in ordered))
            padded = rows if len(columns) == len(ordered) else [row + (None,) for row in rows]
            rows = [getter(row) for row in padded] if len(ordered) > 1 else [(getter(row),) for row in padded]
        return TypedRecords(rows=rows, layout=self.layout, field="data")


_TABLE_HEADER = msgspec.json.Decoder(_TableHeader)


@lru_cache(maxsize=64)
def _row_decoder(layout: FeatureLayout, columns: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """Rows of exactly one value per column, each of its feature's type (built once per column order)."""
    categorical = set(layout.categorical)
    types = tuple((str | None) if name in categorical else (float | None) for name in columns)
    return msgspec.json.Decoder(list[tuple[types]])  # type: ignore[valid-type]


@lru_cache(maxsize=32)
def decoder_for(layout: FeatureLayout) -> BodyDecoder:
    """One decoder per layout: building the types costs ~1 ms, decoding a record a few µs."""
    return BodyDecoder(layout)
