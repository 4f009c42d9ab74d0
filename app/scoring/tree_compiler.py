"""Build `CompiledTrees` (app/scoring/trees.py, whose docstring has the algebra) from a fitted
`Pipeline([ColumnTransformer(...), HistGradientBoostingClassifier])`.

Everything here reads scikit-learn's fitted internals once, at load time: the predictors' node
records, the bin mapper's thresholds and category bitsets, and (through `tree_inputs`) the column
step's layout and the encoders' codes. A layout it does not recognise exactly is refused (None), and
the registry serves that bundle through the generic path.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from app.scoring.tree_inputs import category_values_of, input_names
from app.scoring.trees import UNSEEN_CATEGORY, CategoryRows, CompiledTrees, TableColumn
from app.scoring.types import FeatureLayout, FloatArray

MAX_TABLE_BYTES = 64 * 2**20  # column tables beyond this (very many trees x thresholds) are not compiled
_BITSET_WORD = 32  # scikit-learn's category bitsets are 8 uint32 words (codes 0..255)


def compile_trees(estimator: Any, layout: FeatureLayout) -> CompiledTrees | None:
    """Tables equivalent to `estimator`, or None when it is not the supported boosting shape."""
    if not (isinstance(estimator, Pipeline) and len(estimator.steps) == 2):
        return None
    model = estimator.steps[1][1]
    if not isinstance(model, HistGradientBoostingClassifier):
        return None
    try:
        return _compile(estimator, model, layout)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        # _predictors, _baseline_prediction, _bin_mapper and _preprocessor are scikit-learn internals:
        # a version that lays them out otherwise (or an unfitted model) is served by the generic path.
        return None


class _Tree(NamedTuple):
    """One tree's nodes, and where its leaves fall left to right."""

    nodes: np.ndarray  # scikit-learn's PREDICTOR_RECORD_DTYPE records
    raw_bitsets: np.ndarray  # (categorical splits, 8) uint32: the codes each categorical split sends left
    leaf_rank: np.ndarray  # per node: its position among the leaves, left to right (leaves only)
    left_leaves: np.ndarray  # per internal node: (first, stop) ranks of the leaves of its left subtree
    n_leaves: int


class _Split(NamedTuple):
    tree: int
    node: Any  # one PREDICTOR_RECORD_DTYPE record
    mask: int  # every leaf but those of its left subtree: what is left when a value goes right
    raw_bitset: np.ndarray | None  # categorical splits: the codes that go left
    known: np.ndarray | None  # categorical splits: the codes seen in training


def _compile(
    estimator: Pipeline, model: HistGradientBoostingClassifier, layout: FeatureLayout
) -> CompiledTrees | None:
    if model.n_trees_per_iteration_ != 1 or len(model.classes_) != 2:
        return None  # multiclass: one tree per class and a softmax, not this scorer's algebra
    names = input_names(estimator, model, layout)
    if names is None:
        return None
    category_values = category_values_of(estimator, model, layout, names)
    if category_values is None:
        return None
    trees = [_tree(predictors[0]) for predictors in model._predictors]
    if not trees or any(tree is None for tree in trees):
        return None
    grown = [tree for tree in trees if tree is not None]
    widest = max(tree.n_leaves for tree in grown)
    if widest > 64:
        return None  # one machine word of leaf bits per tree; _boosting grows 31 leaves at most
    dtype = np.uint32 if widest <= 32 else np.uint64
    splits = _splits(model, layout, names, grown, int(np.iinfo(dtype).max))
    if splits is None:
        return None

    blocks: list[np.ndarray] = []
    columns: list[TableColumn] = []
    offset = 0
    for feature, name in enumerate(names):
        if not splits[feature]:
            continue  # never split on: it sends no record anywhere and gets no credit
        if name in layout.categorical:
            built = _category_block(splits[feature], category_values[name], len(grown), dtype)
            if built is None:
                return None
            block, codes = built
            column = TableColumn(layout.categorical.index(name), True, offset, np.empty(0), codes)
        else:
            block, thresholds = _numeric_block(splits[feature], len(grown), dtype)
            column = TableColumn(layout.numeric.index(name), False, offset, thresholds, CategoryRows({}, 0))
        columns.append(column)
        blocks.append(block)
        offset += len(block)
    if offset * len(grown) * np.dtype(dtype).itemsize > MAX_TABLE_BYTES:
        return None

    counts = np.array([tree.n_leaves for tree in grown], dtype=np.intp)
    first_leaf = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    leaf_table = np.zeros((int(counts.sum()), len(layout.names) + 1), dtype=np.float64)
    credit = [layout.names.index(name) for name in names]
    roots = 0.0
    for tree, first in zip(grown, first_leaf, strict=True):
        roots += _fill_leaves(
            tree, float(model.learning_rate), credit, leaf_table[first : first + tree.n_leaves]
        )
    table = np.concatenate(blocks) if blocks else np.empty((0, len(grown)), dtype=dtype)
    return CompiledTrees(
        layout=layout,
        baseline=float(np.asarray(model._baseline_prediction).ravel()[0]) + roots,
        columns=tuple(columns),
        table=np.ascontiguousarray(table),
        leaf_before=first_leaf - 1,
        leaf_table=leaf_table,
    )


def _tree(predictor: Any) -> _Tree | None:
    nodes = predictor.nodes
    leaf_rank = np.full(len(nodes), -1, dtype=np.intp)
    span = np.zeros((len(nodes), 2), dtype=np.intp)  # per node: (first, stop) ranks of its leaves
    left_leaves = np.zeros((len(nodes), 2), dtype=np.intp)
    rank = 0
    # Depth first, left child first, so each subtree's leaves are one contiguous range of ranks;
    # iterative because a tree grown without max_depth can be deep.
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        index, children_done = stack.pop()
        node = nodes[index]
        left, right = int(node["left"]), int(node["right"])
        if node["is_leaf"]:
            leaf_rank[index] = rank
            span[index] = (rank, rank + 1)
            rank += 1
        elif not children_done:
            stack += [(index, True), (right, False), (left, False)]
        else:
            span[index] = (span[left][0], span[right][1])
            left_leaves[index] = span[left]
    if rank != int(nodes["is_leaf"].sum()):
        return None  # a node reached twice or never: not a tree
    return _Tree(nodes, predictor.raw_left_cat_bitsets, leaf_rank, left_leaves, rank)


def _splits(
    model: HistGradientBoostingClassifier,
    layout: FeatureLayout,
    names: list[str],
    trees: list[_Tree],
    all_leaves: int,
) -> list[list[_Split]] | None:
    """Every split, grouped by the input column it tests."""
    if getattr(model, "is_categorical_", None) is not None:
        known_bitsets, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    splits: list[list[_Split]] = [[] for _ in names]
    for t, tree in enumerate(trees):
        for index in np.flatnonzero(tree.nodes["is_leaf"] == 0):
            node = tree.nodes[index]
            feature = int(node["feature_idx"])
            if not 0 <= feature < len(names):
                return None
            first, stop = (int(rank) for rank in tree.left_leaves[index])
            mask = all_leaves & ~(((1 << (stop - first)) - 1) << first)
            if not node["is_categorical"]:
                if math.isnan(float(node["num_threshold"])):
                    return None
                splits[feature].append(_Split(t, node, mask, None, None))
            elif names[feature] in layout.categorical and getattr(model, "is_categorical_", None) is not None:
                raw = tree.raw_bitsets[int(node["bitset_idx"])]
                known = known_bitsets[int(f_idx_map[feature])]
                splits[feature].append(_Split(t, node, mask, raw, known))
            else:
                return None  # a categorical split on a number column: not a shape _boosting builds
    return splits


def _numeric_block(splits: list[_Split], n_trees: int, dtype: Any) -> tuple[np.ndarray, FloatArray]:
    """Row b for a value with b thresholds below it (b = 0..k), row k+1 for NaN."""
    thresholds = np.unique(np.array([float(split.node["num_threshold"]) for split in splits]))
    block = np.full((len(thresholds) + 2, n_trees), np.iinfo(dtype).max, dtype=dtype)
    for split in splits:
        # x goes right iff x > threshold, i.e. in every row after the threshold's own: the mask goes
        # into the next row here, and the accumulate below carries it into all later rows.
        block[np.searchsorted(thresholds, float(split.node["num_threshold"])) + 1, split.tree] &= dtype(
            split.mask
        )
        if not split.node["missing_go_to_left"]:
            block[-1, split.tree] &= dtype(split.mask)
    block[:-1] = np.bitwise_and.accumulate(block[:-1], axis=0)
    return block, thresholds


def _category_block(
    splits: list[_Split], values: dict[str, float], n_trees: int, dtype: Any
) -> tuple[np.ndarray, CategoryRows] | None:
    """One row per distinct value the encoders produce; each string points at its value's row."""
    distinct: dict[float | str, int] = {}  # NaN != NaN, so NaN is keyed by a string
    rows: dict[str, int] = {}
    for string, value in values.items():
        if not (math.isnan(value) or (value == int(value) and value < 256)):
            return None  # scikit-learn casts codes to uint8: anything else is not reproduced here
        key: float | str = "nan" if math.isnan(value) else value
        rows[string] = distinct.setdefault(key, len(distinct))
    block = np.full((len(distinct), n_trees), np.iinfo(dtype).max, dtype=dtype)
    for key, row in distinct.items():
        value = math.nan if key == "nan" else float(key)
        for split in splits:
            if not _goes_left(split, value):
                block[row, split.tree] &= dtype(split.mask)
    unseen = rows.pop(UNSEEN_CATEGORY)
    return block, CategoryRows(rows, unseen)


def _goes_left(split: _Split, value: float) -> bool:
    """`_predict_one_from_raw_data` in scikit-learn's _predictor.pyx, for one node and one value."""
    node = split.node
    if math.isnan(value):
        return bool(node["missing_go_to_left"])
    if split.raw_bitset is None or split.known is None:
        return bool(value <= node["num_threshold"])
    if value < 0:
        return bool(node["missing_go_to_left"])
    code = int(value)  # an integral code below 256 (_category_block checks)
    if _in_bitset(split.raw_bitset, code):
        return True
    if _in_bitset(split.known, code):
        return False
    return bool(node["missing_go_to_left"])  # a code not seen in training is treated as missing


def _in_bitset(bitset: np.ndarray, code: int) -> bool:
    return bool((int(bitset[code // _BITSET_WORD]) >> (code % _BITSET_WORD)) & 1)


def _fill_leaves(tree: _Tree, shrinkage: float, credit: list[int], rows: FloatArray) -> float:
    """Write each leaf's path contributions and its value minus the root's into `rows` (the tree's
    leaves, left to right); return the root's value."""
    nodes = tree.nodes

    def value(index: int) -> float:
        # Leaves already carry the learning rate; internal nodes do not (module docstring).
        node = nodes[index]
        return float(node["value"]) if node["is_leaf"] else float(node["value"]) * shrinkage

    root = value(0)
    stack: list[tuple[int, dict[int, float]]] = [(0, {})]
    while stack:
        index, path = stack.pop()
        node = nodes[index]
        if node["is_leaf"]:
            row = rows[int(tree.leaf_rank[index])]
            for feature, amount in path.items():
                row[feature] = amount
            row[-1] = value(index) - root
            continue
        here = value(index)
        feature = credit[int(node["feature_idx"])]
        for child in (int(node["left"]), int(node["right"])):
            step = dict(path)
            step[feature] = step.get(feature, 0.0) + (value(child) - here)
            stack.append((child, step))
    return root
