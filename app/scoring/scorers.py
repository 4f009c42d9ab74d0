"""Scorers: a compiled path when a bundle allows it, the estimator's own predict otherwise.

Logistic-regression bundles are compiled to exact linear contributions (app/scoring/linear.py),
gradient-boosting bundles to exact tree path contributions (app/scoring/trees.py); any other
estimator, or one whose compiled form fails the build-time self-check, takes the generic path.
Every scorer returns scores plus per-feature contributions in logit units. For the generic path the
contributions are an occlusion approximation: for the bundle's most important features (by the
manifest's permutation importance) the contribution is logit(score) - logit(score with that feature
set to missing). Those do not add up to the logit; the model detail says which method a model uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.special import logit

from app.platform.sizes import FEW_RECORDS
from app.scoring.bodies.records import parse_records, parse_rows
from app.scoring.bodies.typed import TypedRecords
from app.scoring.completeness import Completeness
from app.scoring.explain import Tiers, explain, explain_rows
from app.scoring.linear import CompiledLinear, compile_linear
from app.scoring.tree_compiler import compile_trees
from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch, Scored

log = logging.getLogger(__name__)

OCCLUDED_FEATURES = 8  # generic path: each occluded feature costs one more predict_proba over the batch
SELF_CHECK_TOLERANCE = 1e-9
_PROBE_ROWS = 256
_LOGIT_CLIP = 1e-12


class Scorer(Protocol):
    method: str

    def score(self, batch: RecordBatch) -> Scored: ...


class ScoringModel(Protocol):
    """What scoring needs of a loaded model (app.platform.registry.LoadedModel has it)."""

    @property
    def layout(self) -> FeatureLayout: ...
    @property
    def scorer(self) -> Scorer: ...
    @property
    def descriptions(self) -> tuple[str, ...]: ...
    @property
    def tiers(self) -> Tiers: ...
    @property
    def completeness(self) -> Completeness: ...


def score_records(records: Sequence[Any] | TypedRecords, model: ScoringModel) -> list[dict[str, Any]]:
    """Validate, score and explain JSON records; raises InvalidRequest naming each bad field.

    `records` are parsed JSON objects, or records the typed decoder has already checked. A few
    records on a compiled linear model take the plain-Python path (no numpy, no DataFrame); anything
    else goes through arrays. Both give the same answer (tests/app/test_scorers.py).
    """
    scorer, layout = model.scorer, model.layout
    if len(records) <= FEW_RECORDS and isinstance(scorer, CompiledLinear):
        rows = records.plain_rows() if isinstance(records, TypedRecords) else parse_rows(records, layout)
        answers = explain_rows(scorer.score_rows(rows), rows, layout, model.descriptions, model.tiers)
        return model.completeness.annotate_rows(answers, rows)
    batch = records.batch() if isinstance(records, TypedRecords) else parse_records(records, layout)
    answers = explain(scorer.score(batch), batch, layout, model.descriptions, model.tiers)
    return model.completeness.annotate_batch(answers, batch)


def to_frame(batch: RecordBatch, layout: FeatureLayout) -> pd.DataFrame:
    """The DataFrame the estimator was trained on: schema order, categories as str, numbers as float."""
    columns: dict[str, Any] = {name: batch.numeric[:, j] for j, name in enumerate(layout.numeric)}
    for name, values in zip(layout.categorical, batch.categorical, strict=True):
        columns[name] = np.asarray(values, dtype=object)
    return pd.DataFrame({name: columns[name] for name in layout.names})


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(logit(np.clip(p, _LOGIT_CLIP, 1 - _LOGIT_CLIP)), dtype=np.float64)


@dataclass(frozen=True)
class GenericScorer:
    """Any estimator with predict_proba over the schema's DataFrame."""

    estimator: Any
    layout: FeatureLayout
    occluded: tuple[str, ...]

    method = "occlusion approximation (top features set to missing)"

    def _predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(frame)[:, 1], dtype=np.float64)

    def score(self, batch: RecordBatch) -> Scored:
        frame = to_frame(batch, self.layout)
        scores = self._predict(frame)
        base = _logit(scores)
        contributions = np.zeros((len(batch), len(self.layout.names)), dtype=np.float64)
        for name in self.occluded:
            occluded = frame.copy()
            occluded[name] = MISSING_CATEGORY if name in self.layout.categorical else np.nan
            contributions[:, self.layout.names.index(name)] = base - _logit(self._predict(occluded))
        return Scored(scores=scores, contributions=contributions, baseline=float("nan"))


def _most_important(layout: FeatureLayout, importance: Mapping[str, Any] | None) -> tuple[str, ...]:
    ranked: list[tuple[float, str]] = []
    for name in layout.names:
        value = (importance or {}).get(name)
        weight = abs(float(value)) if isinstance(value, int | float) and np.isfinite(value) else 0.0
        ranked.append((-weight, name))
    return tuple(name for _, name in sorted(ranked)[:OCCLUDED_FEATURES])


def probe_batch(layout: FeatureLayout, compiled: CompiledLinear | None, seed: int = 0) -> RecordBatch:
    """Synthetic rows that exercise every path: missing values, every known category, unseen values."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(_PROBE_ROWS, len(layout.numeric)))
    if compiled is not None:
        numeric = compiled.mean + numeric * compiled.scale
    numeric[rng.random(numeric.shape) < 0.2] = np.nan
    categorical: list[list[str]] = []
    for k in range(len(layout.categorical)):
        known = sorted(compiled.category_coef[k]) if compiled is not None else []
        pool = [*known, MISSING_CATEGORY, "a value never seen in training"]
        categorical.append([pool[i % len(pool)] for i in range(_PROBE_ROWS)])
    return RecordBatch(numeric=numeric, categorical=tuple(categorical))


def build_scorer(estimator: Any, layout: FeatureLayout, importance: Mapping[str, Any] | None) -> Scorer:
    """The compiled scorer (linear, else trees) if it reproduces the estimator on probe rows, else the
    generic one."""
    linear = compile_linear(estimator, layout)
    if linear is not None and _reproduces(linear, estimator, layout, [probe_batch(layout, linear)]):
        return linear
    trees = compile_trees(estimator, layout)
    # For trees, also rows on both sides of every split threshold and category.
    if trees is not None and _reproduces(
        trees, estimator, layout, [probe_batch(layout, None), trees.probe_batch()]
    ):
        return trees
    return GenericScorer(estimator=estimator, layout=layout, occluded=_most_important(layout, importance))


def _reproduces(scorer: Scorer, estimator: Any, layout: FeatureLayout, probes: Sequence[RecordBatch]) -> bool:
    """Whether `scorer` gives the estimator's scores and, added up, its logits on every probe row:
    a compiled scorer's reasons claim to be exact, so both must match."""
    differences: list[float] = []
    for probe in probes:
        frame = to_frame(probe, layout)
        scored = scorer.score(probe)
        expected = np.asarray(estimator.predict_proba(frame)[:, 1], dtype=np.float64)
        logits = np.asarray(estimator.decision_function(frame), dtype=np.float64)
        summed = scored.baseline + scored.contributions.sum(axis=1)
        differences += [np.max(np.abs(scored.scores - expected)), np.max(np.abs(summed - logits))]
    difference = float(np.max(differences))  # np.max, not max: a NaN must fail the check
    if difference <= SELF_CHECK_TOLERANCE:
        return True
    log.warning(
        "compiled scorer disagrees with the estimator",
        extra={"method": scorer.method, "difference": difference},
    )
    return False
