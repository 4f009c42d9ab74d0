"""The compiled linear scorer reproduces the estimator exactly; other estimators use the generic path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from app_helpers import BUNDLE, records_of_frame

from app.platform.errors import InvalidRequest
from app.platform.sizes import FEW_RECORDS
from app.scoring.bodies.records import parse_records, parse_rows
from app.scoring.completeness import Completeness
from app.scoring.explain import Tiers, _largest_columns, explain, explain_rows, largest
from app.scoring.linear import CompiledLinear
from app.scoring.scorers import GenericScorer, build_scorer, score_records
from app.scoring.trees import CompiledTrees
from app.scoring.types import FeatureLayout, RecordBatch
from training.bundle import load_bundle
from training.inspections.ingest import CityData
from training.inspections.models import PreviousCriticalRule, _boosting
from training.inspections.train import build_examples


@pytest.fixture(scope="module")
def bundle():  # type: ignore[no-untyped-def]
    return load_bundle(BUNDLE)


@pytest.fixture(scope="module")
def layout(bundle) -> FeatureLayout:  # type: ignore[no-untyped-def]
    return FeatureLayout.from_schema(bundle.feature_schema)


@pytest.fixture(scope="module")
def feature_rows(chicago_data: CityData, layout: FeatureLayout) -> pd.DataFrame:
    """Real point-in-time features for the last months of the sample (a few thousand inspections)."""
    examples = build_examples(chicago_data, pd.Timestamp("2014-05-01"), None)
    return examples.features[list(layout.names)].assign(_label=examples.labels)


def _batch(frame: pd.DataFrame, layout: FeatureLayout) -> RecordBatch:
    return parse_records(records_of_frame(frame[list(layout.names)]), layout)


def test_committed_bundle_compiles_and_matches_predict_proba(bundle, layout, feature_rows) -> None:  # type: ignore[no-untyped-def]
    scorer = build_scorer(bundle.estimator, layout, bundle.manifest["feature_importance"])
    assert isinstance(scorer, CompiledLinear)
    frame = feature_rows[list(layout.names)]
    scored = scorer.score(_batch(frame, layout))
    expected = bundle.estimator.predict_proba(frame)[:, 1]
    assert len(frame) > 1000 and frame.isna().any().any()  # real rows, with missing values
    np.testing.assert_allclose(scored.scores, expected, rtol=0, atol=1e-9)
    # Contributions are exact: intercept plus their sum is the estimator's logit.
    logit = bundle.estimator.decision_function(frame)
    np.testing.assert_allclose(scored.baseline + scored.contributions.sum(axis=1), logit, rtol=0, atol=1e-9)


def test_unseen_and_missing_categories_match_the_encoder(bundle, layout, feature_rows) -> None:  # type: ignore[no-untyped-def]
    scorer = build_scorer(bundle.estimator, layout, None)
    frame = feature_rows[list(layout.names)].head(50).copy()
    frame["facility_type"] = ["Never seen in training", "Unknown"] * 25
    scored = scorer.score(_batch(frame, layout))
    np.testing.assert_allclose(scored.scores, bundle.estimator.predict_proba(frame)[:, 1], atol=1e-9)
    record = {"facility_type": None}  # a null category is scored as "Unknown", like the feature builder
    assert scorer.score(parse_records([record], layout)).scores[0] == pytest.approx(
        scorer.score(parse_records([{"facility_type": "Unknown"}], layout)).scores[0], abs=0
    )


def test_boosting_compiles_to_trees_and_a_rule_uses_the_generic_path(layout, feature_rows) -> None:  # type: ignore[no-untyped-def]
    frame = feature_rows[list(layout.names)]
    labels = feature_rows["_label"].to_numpy()
    boosting = _boosting(list(layout.numeric), list(layout.categorical), max_iter=20).fit(frame, labels)
    rule = PreviousCriticalRule().fit(frame, labels)
    for estimator, kind in ((boosting, CompiledTrees), (rule, GenericScorer)):
        scorer = build_scorer(estimator, layout, {"prev_critical": 0.5, "facility_type": 0.1})
        assert isinstance(scorer, kind)
        scored = scorer.score(_batch(frame.head(200), layout))
        np.testing.assert_allclose(scored.scores, estimator.predict_proba(frame.head(200))[:, 1], atol=1e-12)
        assert np.isfinite(scored.contributions).all()
    # The rule only reads prev_critical, so only occluding it changes the score.
    scored = build_scorer(rule, layout, {"prev_critical": 0.5}).score(_batch(frame.head(200), layout))
    moved = np.flatnonzero(np.abs(scored.contributions).sum(axis=0) > 0)
    assert [layout.names[j] for j in moved] == ["prev_critical"]


def test_per_record_path_matches_the_batch_path(bundle, layout, feature_rows) -> None:  # type: ignore[no-untyped-def]
    """A few records are scored and explained in plain Python, a batch with numpy: the two paths
    give the same contributions (bit for bit), choose the same reasons (ties and NaN included) and
    assemble the same answers."""
    frame = feature_rows[list(layout.names)].head(300).copy()
    frame.loc[frame.index[::7], "facility_type"] = "Never seen in training"
    records = records_of_frame(frame)
    records[3] = {}  # everything missing
    records[5] = {"prev_critical": 2}  # an integer, the rest missing
    records[6] = dict.fromkeys(layout.numeric, -0.0)  # answered as 0, not -0
    records[7] = dict.fromkeys(layout.numeric, 3)  # integers, answered as floats
    records[8] = dict.fromkeys(layout.numeric, 1e300) | {"prev_critical": -1e-300}
    records[9] = {"facility_type": ""}
    scorer = build_scorer(bundle.estimator, layout, None)
    assert isinstance(scorer, CompiledLinear)
    rows, batch = parse_rows(records, layout), parse_records(records, layout)
    plain, arrays = scorer.score_rows(rows), scorer.score(batch)
    # Contributions: the same bits, term by term.
    assert [[v.hex() for v in row] for row in plain.contributions] == [
        [v.hex() for v in row] for row in arrays.contributions.tolist()
    ]
    np.testing.assert_allclose(plain.scores, arrays.scores, rtol=0, atol=1e-12)
    expected = bundle.estimator.predict_proba(pd.DataFrame(records[10:], columns=list(layout.names)))[:, 1]
    np.testing.assert_allclose(plain.scores[10:], expected, rtol=0, atol=1e-9)

    # Reasons: the same choice, also with ties, zeros, signed zeros and NaN among the contributions.
    rng = np.random.default_rng(5)
    pool = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-300, np.inf, np.nan])
    odd = np.where(rng.random((2000, 12)) < 0.6, rng.choice(pool, (2000, 12)), rng.uniform(-3, 3, (2000, 12)))
    for table in (arrays.contributions, odd):
        for top in (0, 1, 3):
            chosen = _largest_columns(table, top).tolist()
            assert [largest(row, top) for row in table.tolist()] == chosen

    # Answers: the same assembly (a score may differ in its last bits: fsum against numpy's sum).
    tiers, descriptions = Tiers(high=0.3, medium=0.15), tuple(f"the {name}" for name in layout.names)
    one_by_one = explain_rows(plain, rows, layout, descriptions, tiers)
    together = explain(arrays, batch, layout, descriptions, tiers)  # over FEW_RECORDS: the batch path
    assert len(records) > FEW_RECORDS
    for alone, in_batch in zip(one_by_one, together, strict=True):
        assert alone["score"] == pytest.approx(in_batch["score"], rel=0, abs=1e-12)
        assert alone | {"score": None} == in_batch | {"score": None}
    assert not any(" is -0 " in r["text"] for result in together for r in result["reasons"])

    class Model:  # what score_records needs of a LoadedModel
        def __init__(self) -> None:
            self.layout, self.scorer, self.tiers = layout, scorer, tiers
            self.descriptions = descriptions
            self.completeness = Completeness.from_manifest({}, layout)  # tested in test_completeness.py

    answered = score_records(records[:8], Model())  # a few records: the per-record path
    explained = [{key: answer[key] for key in ("score", "tier", "reasons")} for answer in answered]
    assert explained == one_by_one[:8]


@pytest.mark.parametrize("kind", ["linear", "trees"])
def test_reasons_shared_across_a_batch_are_each_records_own(bundle, layout, feature_rows, kind) -> None:  # type: ignore[no-untyped-def]
    """A batch builds each distinct reason once and records share it: every record's answer must
    still be the one it gets scored alone, including a signed zero (read as 0) and a NaN. Trees
    give one value different contributions in different records, so a reason keyed on less than
    (feature, contribution, value) would show here."""
    frame = feature_rows[list(layout.names)]
    if kind == "linear":
        estimator = bundle.estimator
    else:
        labels = feature_rows["_label"].to_numpy()
        estimator = _boosting(list(layout.numeric), list(layout.categorical), max_iter=20).fit(frame, labels)
    scorer = build_scorer(estimator, layout, None)
    assert isinstance(scorer, CompiledLinear if kind == "linear" else CompiledTrees)
    batch = _batch(frame.head(1500), layout)
    numeric = batch.numeric.copy()
    numeric[:40, :] = 0.0
    numeric[20:40, :] = -0.0  # equal to 0.0 as a key: must read the same
    numeric[40:60, :] = np.nan
    batch = RecordBatch(numeric=numeric, categorical=batch.categorical)
    tiers, descriptions = Tiers(high=0.3, medium=0.15), tuple(f"the {name}" for name in layout.names)
    together = explain(scorer.score(batch), batch, layout, descriptions, tiers)
    texts = [reason["text"] for result in together for reason in result["reasons"]]
    assert len(set(texts)) < len(texts)  # the sample's rows do share reasons
    assert together[0]["reasons"] == together[20]["reasons"]
    assert not any(" is -0 " in text for text in texts)
    for i in range(len(together)):
        categories = tuple(column[i : i + 1] for column in batch.categorical)
        one = RecordBatch(numeric=numeric[i : i + 1], categorical=categories)
        [alone] = explain(scorer.score(one), one, layout, descriptions, tiers)
        assert together[i] == alone


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), 10**400])
def test_both_paths_refuse_non_finite_numbers(layout, value) -> None:  # type: ignore[no-untyped-def]
    records = [{}, {"prev_critical": value}]
    for parse in (parse_rows, parse_records):
        with pytest.raises(InvalidRequest) as raised:
            parse(records, layout)
        [problem] = raised.value.problems
        assert problem.loc == ("records", 1, "prev_critical") and "finite" in problem.message
    # NaN (possible in-process, never from JSON) means missing on both paths.
    assert parse_rows([{"prev_critical": float("nan")}], layout).numeric[0] is not None
