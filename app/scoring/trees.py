"""Exact path contributions for gradient-boosting pipelines, scored from lookup tables (`CompiledTrees`).

The committed boosting bundles are `Pipeline([ColumnTransformer([OrdinalEncoder (optional),
"passthrough"]), HistGradientBoostingClassifier])` (training/inspections/models.py `_boosting`). Their
logit is the model's baseline plus one leaf value per tree, and each record is explained by path contributions
(Saabas): on the way from a tree's root to the record's leaf, each split's change in the tree's value
is credited to the split's feature. Per tree these changes telescope to leaf - root, so

    baseline + sum(contributions) == estimator.decision_function(...)
    sigmoid(that logit) == estimator.predict_proba(...)[:, 1]

exactly (up to float rounding). Two details of scikit-learn's trees matter for the credits:

- the grower multiplies only the leaves by the learning rate (`TreeGrower._apply_shrinkage`); the
  internal nodes keep their unshrunk Newton values, so they are scaled here, else a tree's first
  split would be credited about 1/learning_rate times the leaf value and the next ones the opposite;
- the root's value is stored as 0 (the grower never computes it), so the baseline is the model's
  `_baseline_prediction`, the training log-odds, and contributions are measured from it.

Routing follows `_predictor.pyx`: a numeric split goes left iff x <= threshold, NaN goes left iff
`missing_go_to_left`; a categorical split goes left for the codes in its bitset, right for other codes
seen in training, and the missing way for NaN, negative and unseen codes. Strings reach the trees
through the pipeline's own fitted encoders: each known category's code is read from them once, at
compile time, and every unseen string shares the code the encoders give an unseen string.

Scoring avoids walking trees row by row (the QuickScorer layout, Lucchese et al., SIGIR 2015): each
leaf of a tree is a bit, and a split that sends a record right rules out the leaves of its left
subtree. The record's leaf is the lowest bit left standing after the masks of every split that sends
it right. For one input column, which splits send a value right depends only on where the value
falls among that column's thresholds (or which category code it is), so each column gets a table:
one row per interval or code, one mask per tree, AND-ed over all of that column's splits beforehand.
A batch is then one table gather and AND per column, a trailing-zero count, and one sparse product
of the leaves with their precomputed contributions. Anything that does not match the supported shape
exactly is not compiled (`compile_trees` returns None) and is served through the generic path.

The tables are built by `app/scoring/tree_compiler.py`; this module only scores with them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import expit

from app.scoring.types import MISSING_CATEGORY, FeatureLayout, FloatArray, RecordBatch, Scored

_CHUNK_ROWS = 1024  # rows per pass: keeps the (rows, trees) masks in cache (measured: 512-2048 best)
UNSEEN_CATEGORY = "\x00a category never seen in training"  # stands for every unseen string when probing
_PROBE_ROWS = 256


class CategoryRows(dict[str, int]):
    """category -> table row; a missing key answers the unseen row without being stored, so unbounded
    client input cannot grow the table (as in app/scoring/linear.py)."""

    def __init__(self, table: dict[str, int], default: int) -> None:
        super().__init__(table)
        self.default = default

    def __missing__(self, key: str) -> int:
        return self.default


@dataclass(frozen=True)
class TableColumn:
    """How one input column of the trees turns values into rows of the shared mask table."""

    source: int  # the column in batch.numeric, or the index in batch.categorical
    categorical: bool
    offset: int  # first row of this column's block in the table
    thresholds: FloatArray  # numeric: sorted distinct split thresholds (row = offset + #thresholds < x)
    codes: CategoryRows  # categorical: category -> row within the block (unseen strings: codes.default)


@dataclass(frozen=True)
class CompiledTrees:
    """A binary HistGradientBoostingClassifier pipeline reduced to tables; see the module docstring."""

    layout: FeatureLayout
    baseline: float  # the model's baseline prediction plus every tree's root value (those are 0)
    columns: tuple[TableColumn, ...]
    table: np.ndarray  # (rows of all columns, trees) leaf masks, uint32 or uint64
    leaf_before: np.ndarray  # (trees,) global index of each tree's first leaf, minus 1
    leaf_table: FloatArray  # (leaves, names + 1): contributions in layout order, then their sum

    method = "path contributions (Saabas): each split's change in the tree's value is credited to its feature"

    def score(self, batch: RecordBatch) -> Scored:
        n, p = len(batch), len(self.layout.names)
        if n == 0:
            return Scored(scores=np.empty(0), contributions=np.empty((0, p)), baseline=self.baseline)
        trees = self.table.shape[1]
        # scipy's 32-bit indices make the product below about a third faster than 64-bit ones.
        index = np.int32 if n * trees < 2**31 else np.int64
        leaves = np.empty((n, trees), dtype=index)
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            leaves[start:stop] = self._leaves(batch, start, stop)
        # Each row of `leaves` picks one leaf per tree: summing the picked rows of leaf_table is a
        # product with a 0/1 matrix that has exactly one entry per (row, tree), built without copies.
        picks = csr_matrix(
            (np.ones(n * trees), leaves.ravel(), np.arange(0, n * trees + 1, trees, dtype=index)),
            shape=(n, self.leaf_table.shape[0]),
        )
        summed = np.asarray(picks @ self.leaf_table)
        # The last column is each leaf's value minus its root's, so this is the model's own sum of
        # leaf values (in the same tree order) without adding up the contributions again.
        logits = self.baseline + summed[:, p]
        return Scored(scores=expit(logits), contributions=summed[:, :p], baseline=self.baseline)

    def probe_batch(self, seed: int = 0) -> RecordBatch:
        """Rows for the build-time self-check that land on every side of every split: each threshold,
        the next float above it and NaN for numbers; each known category and an unseen one."""
        rng = np.random.default_rng(seed)
        candidates: dict[tuple[bool, int], list[Any]] = {}
        for column in self.columns:
            if column.categorical:
                candidates[True, column.source] = [*column.codes, UNSEEN_CATEGORY, MISSING_CATEGORY]
            else:
                finite = column.thresholds[np.isfinite(column.thresholds)]
                values = [*finite, *np.nextafter(finite, np.inf), math.nan]
                candidates[False, column.source] = [*values, -1e9, 1e9]
        size = max([_PROBE_ROWS, *map(len, candidates.values())])

        def shuffled(key: tuple[bool, int], default: list[Any]) -> list[Any]:
            pool = candidates.get(key, default)
            # Independent shuffles, so the rows mix every column's values in new combinations.
            return [pool[i] for i in rng.permutation(np.resize(np.arange(len(pool)), size))]

        numeric = np.empty((size, len(self.layout.numeric)), dtype=np.float64)
        for j in range(len(self.layout.numeric)):
            numeric[:, j] = shuffled((False, j), [0.0, 1.0, math.nan])
        categorical = tuple(
            shuffled((True, k), [MISSING_CATEGORY, UNSEEN_CATEGORY])
            for k in range(len(self.layout.categorical))
        )
        return RecordBatch(numeric=numeric, categorical=categorical)

    def _leaves(self, batch: RecordBatch, start: int, stop: int) -> np.ndarray:
        """The global index of the leaf each row in [start, stop) reaches in each tree."""
        masks: np.ndarray | None = None
        for rows in self._table_rows(batch, start, stop):
            picked = np.take(self.table, rows, axis=0)
            if masks is None:
                masks = picked
            else:
                np.bitwise_and(masks, picked, out=masks)
        if masks is None:  # no tree splits at all: every tree is its root, leaf 0
            masks = np.ones((stop - start, self.table.shape[1]), dtype=self.table.dtype)
        # m ^ (m - 1) sets the lowest set bit and every bit below it: its popcount is the leaf's
        # position plus one, which leaf_before (first leaf - 1) turns into the global index.
        ranks = np.bitwise_count(masks ^ (masks - masks.dtype.type(1)))
        leaves: np.ndarray = ranks + self.leaf_before
        return leaves

    def _table_rows(self, batch: RecordBatch, start: int, stop: int) -> Iterator[np.ndarray]:
        for column in self.columns:
            if column.categorical:
                values = batch.categorical[column.source][start:stop]
                rows = np.fromiter(map(column.codes.__getitem__, values), dtype=np.intp, count=stop - start)
            else:
                x = batch.numeric[start:stop, column.source]
                rows = np.searchsorted(column.thresholds, x, side="left")
                # NaN sorts after every number, so searchsorted puts it past the last threshold;
                # it has its own row, after that one.
                rows[np.isnan(x)] = len(column.thresholds) + 1
            yield rows + column.offset
