"""What a partner's score rests on: `missing`, `unknown_categories` and `insufficient_data`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from app_helpers import PARTNER, SCORE_URL
from fastapi.testclient import TestClient

from app.platform.registry import LoadedModel
from app.scoring.bodies.records import parse_records, parse_rows
from app.scoring.completeness import INSUFFICIENT_TIER, Completeness
from app.scoring.types import FeatureLayout

LAYOUT = FeatureLayout(names=("a", "b", "c", "kind"), numeric=("a", "b", "c"), categorical=("kind",))
MANIFEST: dict[str, Any] = {
    "feature_schema": [
        {"name": "a", "type": "number"},
        {"name": "b", "type": "number"},
        {"name": "c", "type": "number"},
        {"name": "kind", "type": "category", "allowed_values": ["Restaurant", "School"]},
    ],
    "trust": {
        "families": [{"family": "history", "auc_drop": 0.05}],
        "features": [{"feature": "c", "auc_drop": 0.03}],
        "required_families": {"history": ["a", "b"]},
        "required_features": ["c"],
    },
}
RECORDS: list[dict[str, Any]] = [
    {"a": 1.0, "b": 2.0, "c": 3.0, "kind": "Restaurant"},  # complete
    {"a": 1.0, "c": 3.0, "kind": "Spaceport"},  # b missing (family still has a), unknown kind
    {"c": 3.0, "kind": None},  # all of the history family missing
    {"a": 1.0, "b": None, "kind": "School"},  # the required feature c missing
    {},
]


def _answers(count: int) -> list[dict[str, Any]]:
    return [{"score": 0.5, "tier": "low", "reasons": []} for _ in range(count)]


def test_missing_unknown_and_insufficient_by_the_manifest_rule() -> None:
    completeness = Completeness.from_manifest(MANIFEST, LAYOUT)
    batch = parse_records(RECORDS, LAYOUT)
    answers = completeness.annotate_batch(_answers(len(RECORDS)), batch)
    assert [answer["missing"] for answer in answers] == [
        [],
        ["b"],
        ["a", "b", "kind"],
        ["b", "c"],
        list(LAYOUT.names),
    ]
    assert [answer["unknown_categories"] for answer in answers] == [{}, {"kind": "Spaceport"}, {}, {}, {}]
    assert [answer["tier"] for answer in answers] == ["low", "low", *[INSUFFICIENT_TIER] * 3]
    assert "'history' family" in answers[2]["tier_reason"] and "0.05" in answers[2]["tier_reason"]
    assert "'c' is missing" in answers[3]["tier_reason"] and "0.03" in answers[3]["tier_reason"]
    assert all(answer["score"] == 0.5 for answer in answers)  # the score is kept
    assert "tier_reason" not in answers[0] and "tier_reason" not in answers[1]


def test_the_record_path_and_the_batch_path_agree() -> None:
    completeness = Completeness.from_manifest(MANIFEST, LAYOUT)
    rng = np.random.default_rng(0)
    records = []
    for _ in range(300):
        record: dict[str, Any] = {name: float(rng.normal()) for name in ("a", "b", "c") if rng.random() < 0.6}
        choice = rng.integers(4)
        if choice:
            record["kind"] = ["Restaurant", "Spaceport", None][choice - 1]
        records.append(record)
    by_batch = completeness.annotate_batch(_answers(len(records)), parse_records(records, LAYOUT))
    by_rows = completeness.annotate_rows(_answers(len(records)), parse_rows(records, LAYOUT))
    assert by_batch == by_rows
    assert {answer["tier"] for answer in by_batch} == {"low", INSUFFICIENT_TIER}


def test_a_bundle_without_a_trust_section_marks_nothing_insufficient() -> None:
    manifest = {key: value for key, value in MANIFEST.items() if key != "trust"}
    answers = Completeness.from_manifest(manifest, LAYOUT).annotate_batch(
        _answers(1), parse_records([{}], LAYOUT)
    )
    assert answers[0]["tier"] == "low" and answers[0]["missing"] == list(LAYOUT.names)


def test_the_served_chicago_bundle_declares_required_inputs(model: LoadedModel, client: TestClient) -> None:
    trust = model.manifest["trust"]
    assert trust["required_families"] or trust["required_features"]
    for row in trust["families"]:
        assert row["required"] == (row["auc_drop"] >= trust["auc_drop_limit"])
    assert "## Missing inputs" in model.card_markdown
    shown = client.get(f"/v1/models/{model.name}").json()["required_inputs"]
    assert shown["families"] == trust["required_families"] and shown["features"] == trust["required_features"]


@pytest.mark.parametrize("path", ["records", "table"])
def test_the_score_route_answers_missing_and_unknown_categories(
    client: TestClient, full_record: dict[str, Any], path: str
) -> None:
    records = [full_record, full_record | {"facility_type": "Spaceport"}, {}]
    if path == "records":
        body: dict[str, Any] = {"records": records}
    else:
        columns = list(full_record)
        body = {"columns": columns, "data": [[record.get(name) for name in columns] for record in records]}
    answer = client.post(SCORE_URL, json=body, headers=PARTNER)
    assert answer.status_code == 200, answer.text
    complete, spaceport, empty = answer.json()["results"]
    assert complete["missing"] == [] and complete["unknown_categories"] == {}
    assert complete["tier"] in {"low", "medium", "high"} and "tier_reason" not in complete
    assert spaceport["unknown_categories"] == {"facility_type": "Spaceport"}
    assert empty["tier"] == INSUFFICIENT_TIER and empty["tier_reason"]
    assert len(empty["missing"]) == len(full_record)
