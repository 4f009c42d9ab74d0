"""A Parquet score body answers exactly as the same records in JSON do, and whatever is wrong with
it (not Parquet, compressed, a column unknown or of the wrong type, too many rows) is named."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from app_helpers import PARTNER, SCORE_URL, records_of_frame
from fastapi.testclient import TestClient

from app.platform.registry import LoadedModel

PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


@pytest.fixture(scope="module")
def frame(feature_frame: pd.DataFrame) -> pd.DataFrame:
    return feature_frame.head(300)


def _parquet(table: pd.DataFrame | pa.Table, **options: Any) -> bytes:
    buffer = io.BytesIO()
    arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow, buffer, **({"compression": "none"} | options))
    return buffer.getvalue()


def _post(client: TestClient, body: bytes, headers: dict[str, str] = PARQUET) -> Any:
    return client.post(SCORE_URL, content=body, headers=PARTNER | headers)


def _json_answer(client: TestClient, records: list[dict[str, Any]]) -> Any:
    response = client.post(SCORE_URL, json=records and {"records": records}, headers=PARTNER)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("count", [1, 9, 300])
def test_parquet_answers_as_its_records(client: TestClient, frame: pd.DataFrame, count: int) -> None:
    part = frame.head(count)
    response = _post(client, _parquet(part))
    assert response.status_code == 200, response.text
    _assert_same(response.json(), _json_answer(client, records_of_frame(part)))


def _assert_same(got: Any, expected: Any) -> None:
    """Equal answers; up to 8 records JSON is scored in plain Python, whose sum of the same terms
    may differ from numpy's in the last bit (tests/app/test_scorers.py)."""
    scores = [r.pop("score") for r in got["results"]], [r.pop("score") for r in expected["results"]]
    assert scores[0] == pytest.approx(scores[1], abs=1e-12)
    assert got == expected


def test_pandas_to_parquet_without_compression(client: TestClient, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.head(20).to_parquet(buffer, compression=None, index=False)
    response = _post(client, buffer.getvalue())
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 20


def test_columns_left_out_integers_nan_and_dictionaries(
    client: TestClient, model: LoadedModel, frame: pd.DataFrame
) -> None:
    layout = model.layout
    kept = [*layout.numeric[::2], layout.categorical[0]][::-1]  # another order; the rest missing
    part = frame.head(40)[kept].copy()
    whole = layout.numeric[0]
    part[whole] = part[whole].round().astype("Int64")  # integers, with nulls
    part.loc[3, layout.numeric[2]] = np.nan  # NaN is missing, as null is
    records = records_of_frame(part)
    for record in records:
        if record[whole] is not None:
            record[whole] = int(record[whole])
    table = pa.Table.from_pandas(part, preserve_index=False)
    category = layout.categorical[0]
    index = table.schema.get_field_index(category)
    encoded = table.set_column(index, category, table.column(category).dictionary_encode())
    for body in (_parquet(table), _parquet(encoded, use_dictionary=False)):
        response = _post(client, body)
        assert response.status_code == 200, response.text
        _assert_same(response.json(), _json_answer(client, records))


def test_a_long_category_in_every_row_is_not_copied_per_row(client: TestClient, model: LoadedModel) -> None:
    """10,000 rows of one 200 KB category would be 2 GB if each row got its own copy."""
    column = pa.DictionaryArray.from_arrays(pa.array([0] * 10_000, pa.int32()), pa.array(["x" * 200_000]))
    # Without the Arrow schema in the file, a reader would see plain strings unless told otherwise.
    body = _parquet(pa.table({model.layout.categorical[0]: column}), store_schema=False)
    assert len(body) < 1_000_000  # dictionary-encoded in the file
    pool = pa.default_memory_pool()
    before = pool.max_memory()  # the peak so far: only a new, higher peak shows below
    assert before < 1_000_000_000, "an earlier peak would hide a copy per row"
    response = _post(client, body)
    assert response.status_code == 200, response.text
    assert pool.max_memory() - before < 200_000_000


@pytest.mark.parametrize(
    ("make", "status", "locations"),
    [
        (lambda: b"PAR1 not really", 400, []),
        (lambda: b"", 400, []),
        (lambda: _parquet(pa.table({"prev_critical": [1.0]}), compression="snappy"), 415, []),
        (lambda: _parquet(pa.table({"no_such_feature": [1.0]})), 422, [["body", "columns", 0]]),
        (lambda: _parquet(pa.table({"prev_critical": [True]})), 422, [["body", "columns", 0]]),
        (lambda: _parquet(pa.table({"prev_critical": ["2"]})), 422, [["body", "columns", 0]]),
        (lambda: _parquet(pa.table({"facility_type": [3]})), 422, [["body", "columns", 0]]),
        (lambda: _parquet(pa.table({"prev_critical": [[1.0]]})), 422, [["body", "columns", 0]]),
        (lambda: _parquet(pa.table({"prev_critical": [1.0, float("inf")]})), 422,
         [["records", 1, "prev_critical"]]),
        (lambda: _parquet(pa.table({"prev_critical": pa.array([], pa.float64())})), 422,
         [["body", "records"]]),
        (lambda: _parquet(pa.table({"prev_critical": [1.0] * 10_001})), 413, []),
    ],
)  # fmt: skip
def test_parquet_problems_are_named(client: TestClient, make: Any, status: int, locations: list[Any]) -> None:
    response = _post(client, make())
    assert response.status_code == status, response.text
    assert [detail["loc"] for detail in response.json()["error"]["details"]] == locations


def test_a_cut_off_file_is_400(client: TestClient, frame: pd.DataFrame) -> None:
    body = _parquet(frame.head(50))
    for cut in (len(body) // 2, len(body) - 3):
        assert _post(client, body[:cut]).status_code == 400
    damaged = bytearray(body)
    damaged[len(body) // 3 : len(body) // 3 + 64] = bytes(64)  # zeros over the data pages
    assert _post(client, bytes(damaged)).status_code in (200, 400)  # read or refused, never a 500


def test_a_pandas_index_is_named(client: TestClient, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    # An index that is not a range is written as a column.
    frame.head(5).set_axis([3, 1, 4, 1, 5]).to_parquet(buffer, compression=None)
    response = _post(client, buffer.getvalue())
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert "index=False" in detail["message"]


def test_other_media_types_are_still_415(client: TestClient) -> None:
    response = _post(client, b"x", {"Content-Type": "application/octet-stream"})
    assert response.status_code == 415
    assert "application/vnd.apache.parquet" in response.json()["error"]["message"]
