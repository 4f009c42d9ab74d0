"""A ranked day's rows held as columns: each row built when read, the same dict every time, and
equal after a list process sent the columns to the server."""

from __future__ import annotations

import base64

import numpy as np

from app.inspections.ranked_rows import PendingReasons, RankedRows

NAMES = ("establishment_id", "name", "score", "reasons", "community_area")


def three_rows() -> RankedRows:
    packed = np.array([[1.0, np.nan, 0.5], [2.0, -0.0, -0.25], [3.0, 1e-300, 0.0]])
    reasons = PendingReasons(
        group_names=("history", "neighbourhood"),
        groups=np.array([[0, 1], [1, 0], [0, 1]]),
        totals=np.array([[0.5, 0.0], [-0.25, 0.125], [0.0, 0.0]]),
        packed=packed,
        categories=(np.array(["Restaurant", "Bakery", "_missing"], dtype=object),),
        words=("critical", "serious", "minor"),
    )
    columns = (
        np.array(["1", "2", "3"], dtype=object),
        np.array(["A\nB \u2028", None, ""], dtype=object),
        np.array([0.9, 0.5, 1e-300], dtype=object),
        None,
        np.array(["LOOP", None, "UPTOWN"], dtype=object),
    )
    return RankedRows(NAMES, columns, reasons)


def test_a_row_holds_its_columns_and_its_pending_reasons() -> None:
    rows = three_rows()
    assert len(rows) == 3
    first = rows[0]
    assert list(first) == list(NAMES)  # keys in the columns' order
    assert (first["establishment_id"], first["name"], first["score"]) == ("1", "A\nB \u2028", 0.9)
    assert first["reasons"]["groups"] == [["history", 0.5]]  # a zero total gives no reason
    assert first["reasons"]["categories"] == ["Restaurant"]
    assert first["reasons"]["words"] == ["critical", "serious", "minor"]
    inputs = np.frombuffer(base64.b64decode(first["reasons"]["inputs"]), dtype=np.float64)
    assert inputs[0] == 1.0 and np.isnan(inputs[1]) and inputs[2] == 0.5
    assert rows[1]["reasons"]["groups"] == [["neighbourhood", -0.25], ["history", 0.125]]
    assert rows[2]["reasons"]["groups"] == []


def test_a_row_is_built_once_when_read_and_kept() -> None:
    rows = three_rows()
    assert next(iter(rows))["establishment_id"] == "1"
    assert rows._rows[1] is None and rows._rows[2] is None
    first = rows[0]
    first["reasons"] = ["worded"]  # a list words a row's reasons in place
    assert rows[0] is first and rows[0]["reasons"] == ["worded"]
    assert rows[1:] == [rows[1], rows[2]] and rows[-1] is rows[2]


def test_a_column_is_read_without_building_rows() -> None:
    rows = three_rows()
    assert rows.column("community_area") == ["LOOP", None, "UPTOWN"]
    assert all(row is None for row in rows._rows)


def test_reordered_rows_keep_each_rows_reasons() -> None:
    rows = three_rows()
    reordered = rows._reasons.take(np.array([2, 0, 1]))
    assert reordered.row(1) == rows._reasons.row(0)
    assert reordered.row(0) == rows._reasons.row(2)


def test_rows_sent_by_a_list_process_are_equal() -> None:
    rows = three_rows()
    sent = RankedRows.decode(rows.encode())
    assert len(sent) == 3
    assert sent._rows == [None, None, None]  # nothing built on either side
    assert list(sent) == list(three_rows())


def test_no_rows() -> None:
    rows = RankedRows.decode(RankedRows.empty().encode())
    assert len(rows) == 0 and list(rows) == [] and rows[:3] == []
