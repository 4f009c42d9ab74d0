"""The typed decoder gives exactly the general path's answers, and refuses what that path must explain."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from app_helpers import records_of_frame

from app.platform.registry import LoadedModel
from app.scoring.bodies.records import parse_records, parse_rows
from app.scoring.bodies.typed import decoder_for
from app.scoring.scorers import score_records
from app.scoring.types import FeatureLayout


@pytest.fixture(scope="module")
def real_records(feature_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Real point-in-time feature rows (with missing values), as a partner would send them."""
    records = records_of_frame(feature_frame.head(600))
    assert any(value is None for record in records for value in record.values())
    return records


def _vary(records: list[dict[str, Any]], layout: FeatureLayout) -> list[dict[str, Any]]:
    """What JSON clients send besides full records: integers, absent fields, unseen categories."""
    varied = []
    for i, record in enumerate(records):
        record = dict(record)
        name = layout.numeric[i % len(layout.numeric)]
        if i % 3 == 0:
            record.pop(name)
        elif i % 3 == 1 and record[name] is not None:
            record[name] = int(record[name])
        if i % 7 == 0:
            record[layout.categorical[0]] = "a type never seen in training"
        if i % 11 == 0:
            record[layout.categorical[-1]] = None
        varied.append(record)
    return varied


def test_batches_decode_to_the_general_paths_arrays(model: LoadedModel, real_records: list[Any]) -> None:
    """`batch()` gives the general path's arrays."""
    records = _vary(real_records, model.layout)
    typed = decoder_for(model.layout).decode(orjson.dumps({"records": records}))
    assert typed is not None and len(typed) == len(records)
    expected = parse_records(records, model.layout)
    got = typed.batch()
    np.testing.assert_array_equal(got.numeric, expected.numeric)  # NaN where missing, in both
    assert got.categorical == expected.categorical
    rows, expected_rows = typed.plain_rows(), parse_rows(records[:5], model.layout)
    assert rows.categorical[0][:5] == expected_rows.categorical[0]
    assert [tuple(map(_float, row)) for row in rows.numeric[:5]] == [
        tuple(map(_float, row)) for row in expected_rows.numeric
    ]


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


@pytest.mark.parametrize("count", [1, 3, 8, 9, 600])
def test_answers_are_the_general_paths(model: LoadedModel, real_records: list[Any], count: int) -> None:
    records = _vary(real_records, model.layout)[:count]
    typed = decoder_for(model.layout).decode(orjson.dumps({"records": records}))
    assert typed is not None
    # Through JSON both ways, as the service answers: 5 and 5.0 must not differ.
    assert orjson.dumps(score_records(typed, model)) == orjson.dumps(score_records(records, model))


@pytest.mark.parametrize(
    "body",
    [
        b'{"records": [{"prev_critical": "2"}]}',  # wrong type
        b'{"records": [{"prev_critical": true}]}',  # a bool is not a number
        b'{"records": [{"facility_type": 3}]}',
        b'{"records": [{"no_such_feature": 1}]}',
        b'{"records": [{"prev_critical": 1e400}]}',  # out of the float range
        b'{"records": [{"prev_critical": 1}], "extra": 1}',
        b'{"records": {"prev_critical": 1}}',
        b'{"records": [[1, 2]]}',
        b"[]",
        b'{"records": [{"prev_critical": 1}',  # cut off
        b'{"records": [{"prev_critical": NaN}]}',
    ],
)
def test_anything_else_goes_to_the_general_path(model: LoadedModel, body: bytes) -> None:
    assert decoder_for(model.layout).decode(body) is None


def test_valid_edge_bodies_decode(model: LoadedModel) -> None:
    decoder = decoder_for(model.layout)
    empty = decoder.decode(b'{"records": []}')
    assert empty is not None and len(empty) == 0  # the route answers 422 "records is empty"
    one = decoder.decode(b'{"records": [{}]}')
    assert one is not None
    batch = one.batch()
    assert np.isnan(batch.numeric).all() and all(column == ["Unknown"] for column in batch.categorical)


def test_feature_names_need_not_be_identifiers() -> None:
    layout = FeatureLayout(
        names=("311 calls", "class", "zone-type"), numeric=("311 calls", "class"), categorical=("zone-type",)
    )
    typed = decoder_for(layout).decode(b'{"records": [{"311 calls": 4, "class": null, "zone-type": "B"}]}')
    assert typed is not None
    batch = typed.batch()
    assert batch.numeric[0, 0] == 4.0 and np.isnan(batch.numeric[0, 1]) and batch.categorical == (["B"],)
