"""A ranked day's rows held as columns: each row built when read, the same dict every time, equal
after a list process sent the columns to the server, and filtered by their columns."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from app.inspections.daily import DailyQuery, _matching
from app.inspections.ranked_rows import PendingReasons, RankedRows, json_column

NAMES = ("establishment_id", "name", "score", "reasons", "community_area")


def three_rows() -> RankedRows:
    packed = np.array([[1.0, np.nan, 0.5], [2.0, -0.0, -0.25], [3.0, 1e-300, 0.0]])
    reasons = PendingReasons(
        group_names=("history", "neighbourhood"),
        groups=np.array([[0, 1], [1, 0], [0, 1]]),
        totals=np.array([[0.5, 0.0], [-0.25, 0.125], [0.0, 0.0]]),
        packed=packed,
        categories=(pa.array(["Restaurant", "Bakery", "_missing"]),),
        words=("critical", "serious", "minor"),
    )
    columns = (
        pa.array(["1", "2", "3"]),
        pa.array(["A\nB \u2028", None, ""]),
        pa.array([0.9, 0.5, 1e-300]),
        None,
        pa.array(["LOOP", None, "UPTOWN"]),
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
    assert rows.column("community_area") is rows.column("community_area")  # converted once
    assert rows[1]["community_area"] is None and rows[2]["name"] == ""  # rows read it, or the array
    assert [row["score"] for row in rows] == [0.9, 0.5, 1e-300]


def test_columns_hold_json_ready_values() -> None:
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2014-08-01 13:45", None]),
            "text": pd.Series(["a", None], dtype="string"),
            "number": [1.5, np.nan],
            "count": pd.Series([3, None], dtype="Int64"),
            "absent": [pd.NA, pd.NA],
            "mixed": ["a", 2],
        }
    )
    as_json = {name: json_column(frame[name]).to_pylist() for name in frame.columns}
    assert as_json == {
        "day": ["2014-08-01", None],
        "text": ["a", None],
        "number": [1.5, None],
        "count": [3, None],
        "absent": [None, None],
        "mixed": ["a", "2"],
    }
    assert json_column(np.array([0.25, np.nan])).to_pylist() == [0.25, None]


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


def test_filters_select_exactly_the_rows_that_pass_them() -> None:
    names = ("tier", "facility_type", "zip", "community_area", "area_ward", "reasons")
    values = [
        ("high", "Restaurant", "60614", "LOOP", "42"),
        ("low", "Restaurant", None, "LOOP", "42"),
        ("medium", "Bakery", "60614", None, "1"),
        ("high", "Bakery", "60615", "UPTOWN", None),
    ]
    columns = tuple(pa.array(list(column)) for column in zip(*values, strict=True))
    reasons = three_rows()._reasons.take(np.array([0, 1, 2, 0]))
    rows = RankedRows(names, (*columns, None), reasons)
    query = DailyQuery(city="chicago", list_date=None, limit=10)

    def passing(**filters: Any) -> list[int]:
        return list(_matching(rows, dataclasses.replace(query, **filters)))

    assert passing() == [0, 1, 2, 3]
    assert passing(min_tier="medium") == [0, 2, 3] and passing(min_tier="high") == [0, 3]
    assert passing(facility_type="Bakery") == [2, 3] and passing(facility_type="Bar") == []
    assert passing(zip="60614") == [0, 2] and passing(community_area="LOOP") == [0, 1]
    assert passing(areas=(("ward", "42"),)) == [0, 1] and passing(areas=(("precinct", "42"),)) == []
    assert passing(min_tier="high", facility_type="Bakery", zip="60615", community_area="UPTOWN") == [3]
    assert all(row is None for row in rows._rows)  # filtering builds no row
    assert list(_matching(RankedRows.empty(), query)) == []
