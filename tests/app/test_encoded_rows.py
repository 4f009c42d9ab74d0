"""Rows from a list process: split into one document per row, decoded when read, equal to the rows."""

from __future__ import annotations

from typing import Any

from app.inspections.encoded_rows import EncodedRows

ROWS: list[dict[str, Any]] = [
    {"establishment_id": "1", "name": "A\nB \u2028 \"quoted\"", "score": 0.5, "reasons": [{"text": "x\ny"}]},
    {"establishment_id": "2", "name": None, "score": 1e-300, "reasons": []},
    {"establishment_id": "3", "name": "", "score": 0.25, "reasons": [{"text": ""}]},
]


def test_rows_round_trip_with_newlines_in_their_text() -> None:
    rows = EncodedRows.decode(EncodedRows.encode(ROWS))
    assert len(rows) == 3
    assert list(rows) == ROWS
    assert rows[1:] == ROWS[1:] and rows[-1] == ROWS[-1]
    assert rows[0] is rows[0]  # decoded once, then kept


def test_no_rows() -> None:
    rows = EncodedRows.decode(EncodedRows.encode([]))
    assert len(rows) == 0 and list(rows) == []


def test_a_row_is_decoded_only_when_read() -> None:
    rows = EncodedRows.decode(EncodedRows.encode(ROWS))
    assert next(iter(rows)) == ROWS[0]
    assert rows._decoded[1] is None and rows._decoded[2] is None
