"""The compiled tree scorer reproduces gradient-boosting bundles exactly, and credits each split's
change in value to its feature (path contributions); shapes it does not support are not compiled."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from app_helpers import BUNDLE, PARTNER, records_of_frame
from fastapi.testclient import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from app.scoring import scorers
from app.scoring.bodies.records import parse_records
from app.scoring.scorers import GenericScorer, build_scorer, to_frame
from app.scoring.tree_compiler import compile_trees
from app.scoring.trees import CompiledTrees
from app.scoring.types import FeatureLayout, RecordBatch
from training.bundle import Bundle, load_bundle
from training.inspections.config import load_city_config
from training.inspections.ingest import CityData, load_city
from training.inspections.models import PreviousCriticalRule, _boosting, _linear
from training.inspections.train import build_examples

REPO_ROOT = Path(__file__).resolve().parents[2]
BOSTON_MODEL = "boston-food-inspections"
BOSTON_CONFIG = REPO_ROOT / "data" / "sample" / "boston" / "city.toml"
EXACT = 1e-9


@pytest.fixture(scope="module")
def boston() -> Bundle:
    return load_bundle(next((REPO_ROOT / "models" / BOSTON_MODEL).glob("*/manifest.json")).parent)


@pytest.fixture(scope="module")
def boston_layout(boston: Bundle) -> FeatureLayout:
    return FeatureLayout.from_schema(boston.feature_schema)


@pytest.fixture(scope="module")
def boston_rows(boston_layout: FeatureLayout) -> pd.DataFrame:
    """Real point-in-time features for the sample's last year (a few thousand inspections)."""
    examples = build_examples(load_city(load_city_config(BOSTON_CONFIG)), pd.Timestamp("2013-01-01"), None)
    return examples.features[list(boston_layout.names)]


def _batch(frame: pd.DataFrame, layout: FeatureLayout) -> RecordBatch:
    """The frame as the service receives it: JSON records, missing values as null."""
    return parse_records(records_of_frame(frame[list(layout.names)]), layout)


def _assert_exact(scorer: Any, estimator: Any, frame: pd.DataFrame, layout: FeatureLayout) -> Any:
    scored = scorer.score(_batch(frame, layout))
    np.testing.assert_allclose(scored.scores, estimator.predict_proba(frame)[:, 1], rtol=0, atol=EXACT)
    logit = estimator.decision_function(frame)
    np.testing.assert_allclose(scored.baseline + scored.contributions.sum(axis=1), logit, rtol=0, atol=EXACT)
    return scored


def test_boston_bundle_compiles_and_matches_the_estimator(boston, boston_layout, boston_rows) -> None:  # type: ignore[no-untyped-def]
    scorer = build_scorer(boston.estimator, boston_layout, boston.manifest["feature_importance"])
    assert isinstance(scorer, CompiledTrees)
    assert len(boston_rows) > 1000 and boston_rows.isna().any().any()  # real rows, with missing values
    scored = _assert_exact(scorer, boston.estimator, boston_rows, boston_layout)
    model = boston.estimator.named_steps["model"]
    # Every root is stored as 0, so contributions are measured from the training log-odds.
    assert scored.baseline == pytest.approx(float(model._baseline_prediction.ravel()[0]), abs=0)
    assert scored.contributions.shape == (len(boston_rows), len(boston_layout.names))
    # Rows with missing history are scored like the others, and one record alone like in a batch.
    missing = boston_rows[boston_rows.isna().any(axis=1)]
    assert len(missing) > 10
    _assert_exact(scorer, boston.estimator, missing, boston_layout)
    one = scorer.score(_batch(boston_rows.iloc[[7]], boston_layout))
    np.testing.assert_array_equal(one.contributions[0], scored.contributions[7])
    # A feature the trees never split on gets no credit at all.
    used = {int(node["feature_idx"]) for p in model._predictors for node in p[0].nodes if not node["is_leaf"]}
    unused = [j for j in range(len(boston_layout.names)) if j not in used]
    assert not scored.contributions[:, unused].any()


def _reference_contributions(model: HistGradientBoostingClassifier, x: np.ndarray) -> np.ndarray:
    """Path contributions of a one-tree model worked out without the internal nodes' stored values.

    In the first boosting iteration every sample has the same prediction, hence the same hessian, so
    a node's Newton value is the sample-count-weighted mean of its children's: internal values follow
    from the (shrunk) leaves and the counts alone. The root is 0, as scikit-learn stores it.
    """
    [[tree]] = model._predictors
    nodes = tree.nodes
    value = np.zeros(len(nodes))

    def fill(index: int) -> None:
        node = nodes[index]
        if node["is_leaf"]:
            value[index] = node["value"]
            return
        left, right = int(node["left"]), int(node["right"])
        fill(left)
        fill(right)
        count = nodes["count"]
        value[index] = (count[left] * value[left] + count[right] * value[right]) / count[index]

    fill(0)
    value[0] = 0.0
    out = np.zeros(x.shape)
    for row in range(len(x)):
        index = 0
        while not nodes[index]["is_leaf"]:
            node = nodes[index]
            v = x[row, int(node["feature_idx"])]
            left = node["missing_go_to_left"] if np.isnan(v) else v <= node["num_threshold"]
            child = int(node["left"] if left else node["right"])
            out[row, int(node["feature_idx"])] += value[child] - value[index]
            index = child
    return out


def _synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 5, n) * 1.0})
    logit = 1.5 * frame["a"] - frame["b"] + 0.5 * (frame["c"] == 3)
    frame.loc[rng.random(n) < 0.3, "b"] = np.nan  # missing in training: NaN gets its own direction
    missing_a = rng.random(n) < 0.1
    frame.loc[missing_a, "a"] = np.nan
    labels = (rng.random(n) < 1 / (1 + np.exp(-(logit + 2.0 * missing_a)))).astype(int)
    return frame, labels


SYNTHETIC = FeatureLayout(names=("a", "b", "c"), numeric=("a", "b", "c"), categorical=())


def test_splits_are_credited_with_the_shrunk_change_in_value() -> None:
    frame, labels = _synthetic(3000, seed=1)
    estimator = _boosting(
        ["a", "b", "c"], [], max_iter=1, learning_rate=0.1, max_depth=4, early_stopping=False
    ).fit(frame, labels)
    compiled = compile_trees(estimator, SYNTHETIC)
    assert compiled is not None
    rows, _ = _synthetic(500, seed=2)
    scored = _assert_exact(compiled, estimator, rows, SYNTHETIC)
    expected = _reference_contributions(estimator.named_steps["model"], rows.to_numpy())
    # Without the learning rate on internal nodes these would be off by a factor of ten level by level.
    np.testing.assert_allclose(scored.contributions, expected, rtol=0, atol=EXACT)
    assert np.count_nonzero(expected) > len(rows)  # several features credited per row


def test_synthetic_model_with_missing_values_matches_on_every_side_of_every_split() -> None:
    frame, labels = _synthetic(4000, seed=3)
    estimator = _boosting(["a", "b", "c"], [], max_iter=60, learning_rate=0.2, max_leaf_nodes=20).fit(
        frame, labels
    )
    scorer = build_scorer(estimator, SYNTHETIC, None)
    assert isinstance(scorer, CompiledTrees)
    rows, _ = _synthetic(2000, seed=4)
    rows.loc[rows.index[:50], "c"] = np.nan  # missing where training never was: the trees' default side
    _assert_exact(scorer, estimator, rows, SYNTHETIC)
    # Values exactly on each threshold go left, the next float up goes right.
    probe = scorer.probe_batch(seed=5)
    probe_frame = to_frame(probe, SYNTHETIC)
    np.testing.assert_allclose(
        scorer.score(probe).scores, estimator.predict_proba(probe_frame)[:, 1], rtol=0, atol=EXACT
    )


CATEGORICAL = FeatureLayout(names=("a", "kind", "b"), numeric=("a", "b"), categorical=("kind",))


def test_categorical_splits_through_the_ordinal_encoder_match() -> None:
    rng = np.random.default_rng(6)
    n = 4000
    # Frequent kinds, two kinds too rare for the encoder (pooled into one code), and "Unknown".
    kinds = rng.choice(
        ["bakery", "bar", "cafe", "diner", "Unknown", "rare1", "rare2"],
        n,
        p=[0.3, 0.2, 0.2, 0.2, 0.09, 0.005, 0.005],
    )
    frame = pd.DataFrame({"a": rng.normal(size=n), "kind": kinds.astype(object), "b": rng.normal(size=n)})
    frame.loc[rng.random(n) < 0.2, "a"] = np.nan
    effect = pd.Series(kinds).map({"bakery": -1.0, "bar": 1.5, "cafe": 0.0, "diner": 1.0}).fillna(2.0)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(effect + frame["b"]).to_numpy()))).astype(int)
    estimator = _boosting(["a", "b"], ["kind"], max_iter=40, learning_rate=0.2).fit(
        frame[list(CATEGORICAL.names)], labels
    )
    model = estimator.named_steps["model"]
    assert sum(int(p[0].nodes["is_categorical"].sum()) for p in model._predictors) > 10
    scorer = build_scorer(estimator, CATEGORICAL, None)
    assert isinstance(scorer, CompiledTrees)
    rows = frame.head(600)[list(CATEGORICAL.names)].copy()
    rows.loc[rows.index[:40], "kind"] = "a kind never seen"
    rows.loc[rows.index[40:80], "kind"] = "rare1"
    scored = _assert_exact(scorer, estimator, rows, CATEGORICAL)
    assert np.abs(scored.contributions[:, CATEGORICAL.names.index("kind")]).max() > 0.1


def test_chicago_boosting_with_categories_matches_on_real_rows(chicago_data: CityData) -> None:
    """The grid's gradient-boosting candidate on Chicago's schema (two categorical features)."""
    layout = FeatureLayout.from_schema(load_bundle(BUNDLE).feature_schema)
    examples = build_examples(chicago_data, pd.Timestamp("2014-05-01"), None)
    frame = examples.features[list(layout.names)]
    estimator = _boosting(list(layout.numeric), list(layout.categorical), max_iter=20).fit(
        frame, examples.labels
    )
    scorer = build_scorer(estimator, layout, None)
    assert isinstance(scorer, CompiledTrees)
    rows = frame.head(500).copy()
    rows.loc[rows.index[:25], "facility_type"] = "Never seen in training"
    _assert_exact(scorer, estimator, rows, layout)


def test_unsupported_shapes_are_not_compiled(boston_layout, boston_rows) -> None:  # type: ignore[no-untyped-def]
    frame = boston_rows.fillna(0.0).head(2000)
    rng = np.random.default_rng(7)
    labels = (rng.random(len(frame)) < 0.4).astype(int)  # noise: trees as wide as allowed
    three_classes = labels + (frame["days_since_last"] > 300).to_numpy()
    numeric = list(boston_layout.numeric)
    passthrough = ColumnTransformer([("numeric", "passthrough", numeric)])
    unsupported: list[Any] = [
        _boosting(numeric, [], max_iter=5).fit(frame, three_classes),  # multiclass: a softmax of trees
        _linear(numeric, [], c=1.0).fit(frame, labels),
        PreviousCriticalRule().fit(frame, labels.tolist()),
        HistGradientBoostingClassifier(max_iter=5).fit(frame, labels),  # not in a pipeline
        Pipeline([("features", passthrough), ("model", HistGradientBoostingRegressor(max_iter=5))]).fit(
            frame, labels
        ),
        _boosting(numeric, [], max_iter=5),  # not fitted
        _boosting(numeric, [], max_iter=5, max_leaf_nodes=80, min_samples_leaf=5).fit(frame, labels),
    ]
    wide = unsupported[-1].named_steps["model"]._predictors
    assert max(p[0].get_n_leaf_nodes() for p in wide) > 64  # more leaves than one word of bits
    for estimator in unsupported:
        assert compile_trees(estimator, boston_layout) is None, estimator
    assert isinstance(build_scorer(unsupported[2], boston_layout, None), GenericScorer)


def test_a_compiled_scorer_that_disagrees_falls_back_to_the_generic_path(
    boston: Bundle, boston_layout: FeatureLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = compile_trees(boston.estimator, boston_layout)
    assert compiled is not None
    # Scores still right, contributions off by a little: the self-check compares their sum too.
    table = compiled.leaf_table.copy()
    table[:, 0] += 1e-6
    off = dataclasses.replace(compiled, leaf_table=table)
    monkeypatch.setattr(scorers, "compile_trees", lambda estimator, layout: off)
    assert isinstance(build_scorer(boston.estimator, boston_layout, None), GenericScorer)


def test_score_route_explains_boston_with_path_contributions(client: TestClient, boston_rows) -> None:  # type: ignore[no-untyped-def]
    detail = client.get(f"/v1/models/{BOSTON_MODEL}").json()
    assert detail["reasons_method"] == CompiledTrees.method
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in boston_rows.head(20).to_dict("records")
    ]
    for batch in (records[:1], records):
        response = client.post(f"/v1/models/{BOSTON_MODEL}/score", json={"records": batch}, headers=PARTNER)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["reasons_method"] == CompiledTrees.method
        for result in body["results"]:
            assert result["reasons"] and all(reason["contribution"] != 0 for reason in result["reasons"])
