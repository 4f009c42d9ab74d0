"""A table body, `{"columns": [...], "data": [[...]]}`, answers exactly as the same records do, on
the typed path and the general one, and every problem of its shape is named."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from app_helpers import PARTNER, SCORE_URL, records_of_frame
from fastapi.testclient import TestClient

from app.platform.registry import LoadedModel
from app.scoring.bodies.typed import decoder_for
from app.scoring.scorers import score_records


@pytest.fixture(scope="module")
def frame(feature_frame: pd.DataFrame) -> pd.DataFrame:
    return feature_frame.head(300)


def _table(frame: pd.DataFrame) -> bytes:
    """The frame as a table body, every number exact (pandas' `to_json` rounds to 10 digits unless
    told `double_precision=15`, which is the test below)."""
    columns = list(frame.columns)
    rows = [[record[c] for c in columns] for record in records_of_frame(frame)]
    return orjson.dumps({"columns": columns, "data": rows})


def test_pandas_split_json_is_a_table_body(client: TestClient, frame: pd.DataFrame) -> None:
    body = frame.head(20).to_json(orient="split", index=False, double_precision=15).encode()
    assert orjson.loads(body).keys() == {"columns", "data"}
    assert len(_answer(client, body)["results"]) == 20


def _answer(client: TestClient, body: bytes) -> Any:
    response = client.post(SCORE_URL, content=body, headers=PARTNER | {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("count", [1, 8, 9, 300])
def test_a_table_answers_as_its_records(client: TestClient, frame: pd.DataFrame, count: int) -> None:
    part = frame.head(count)
    assert _answer(client, _table(part)) == _answer(client, orjson.dumps({"records": records_of_frame(part)}))


def test_columns_in_any_order_and_left_out_are_missing(
    client: TestClient, model: LoadedModel, frame: pd.DataFrame
) -> None:
    layout = model.layout
    # Half the numbers and one category, in another order than the schema's; the rest left out.
    kept = [*layout.numeric[::2], layout.categorical[0]][::-1]
    part = frame.head(40)[kept]
    records = [{k: v for k, v in record.items() if k in kept} for record in records_of_frame(part)]
    typed = decoder_for(model.layout).decode(_table(part))
    assert typed is not None and typed.field == "data"  # the fast path read it
    for count in (3, 40):  # the plain-Python path and the arrays
        sub = part.head(count)
        assert _answer(client, _table(sub)) == _answer(client, orjson.dumps({"records": records[:count]}))


def test_typed_and_general_paths_agree(model: LoadedModel, frame: pd.DataFrame) -> None:
    part = frame.head(50)
    typed = decoder_for(model.layout).decode(_table(part))
    assert typed is not None
    general = score_records(records_of_frame(part), model)
    assert orjson.dumps(score_records(typed, model)) == orjson.dumps(general)


@pytest.mark.parametrize(
    ("body", "status", "locations"),
    [
        ({"columns": ["no_such_feature"], "data": [[1]]}, 422, [["body", "columns", 0]]),
        ({"columns": ["prev_critical", "prev_critical"], "data": [[1, 1]]}, 422, [["body", "columns", 1]]),
        ({"columns": [3], "data": [[1]]}, 422, [["body", "columns", 0]]),
        ({"columns": "prev_critical", "data": [[1]]}, 422, [["body", "columns"]]),
        ({"columns": ["prev_critical"], "data": [[1], [1, 2], 3]}, 422,
         [["body", "data", 1], ["body", "data", 2]]),
        ({"columns": ["prev_critical"], "data": {"0": [1]}}, 422, [["body", "data"]]),
        ({"columns": ["prev_critical"]}, 422, [["body", "data"]]),
        ({"data": [[1]]}, 422, [["body", "columns"]]),
        ({"columns": ["prev_critical"], "data": []}, 422, [["body", "data"]]),
        ({"columns": ["prev_critical"], "data": [[1]], "extra": 1}, 422, [["body", "extra"]]),
        ({"columns": ["prev_critical", "facility_type"], "data": [["2", 3]]}, 422,
         [["data", 0, "prev_critical"], ["data", 0, "facility_type"]]),
        (b'{"columns": ["prev_critical"], "data": [[true], ["1"]]}', 422,
         [["data", 0, "prev_critical"], ["data", 1, "prev_critical"]]),
    ],
)  # fmt: skip
def test_table_problems_are_named(client: TestClient, body: Any, status: int, locations: list[Any]) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = client.post(SCORE_URL, content=content, headers=PARTNER | {"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert [detail["loc"] for detail in response.json()["error"]["details"]] == locations


def test_over_the_record_limit_is_413_for_a_table(client: TestClient) -> None:
    body = {"columns": ["prev_critical"], "data": [[1]] * 10_001}
    response = client.post(SCORE_URL, json=body, headers=PARTNER)
    assert response.status_code == 413, response.text
