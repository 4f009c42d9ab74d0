"""What a partner's score rests on: the inputs a record lacked, the categories the model has no weight
of its own for, and whether the bundle trusts a score without them.

Every answer of the score route gets `missing` (feature names with no value: absent, null, or the
category "Unknown") and `unknown_categories` (feature → value not among the schema's
`allowed_values`: never seen in training, or too rare to get a weight of its own, so pooled with the
rare ones). A bundle trained with a trust assessment (training/inspections/trust.py, the manifest's
`trust` section) names required feature families; a record in which every feature of one of them is
missing keeps its score but gets `tier: "insufficient_data"` and a `tier_reason`. Bundles without
that section mark nothing insufficient.

Two paths find the missing inputs, as scoring has two (app/scoring/explain.py): over arrays for a
batch, record by record for a few; both hand each record's missing positions to `_answers`, which
alone decides what they mean (tests/app/test_completeness.py compares the paths).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch, RecordRows

TRUST_KEY = "trust"  # the manifest section training/inspections/trust.py writes (its TRUST_KEY)
INSUFFICIENT_TIER = "insufficient_data"
_KEPT_PATTERNS = 4096  # distinct patterns of missing inputs remembered per bundle


@dataclass(frozen=True)
class RequiredInputs:
    """Inputs a trusted score needs: a family (insufficient when all are missing) or one feature."""

    what: str  # as the reason names it
    positions: frozenset[int]  # in the layout's name order
    auc_drop: float | None  # validation AUC lost without them, from the manifest


@dataclass(frozen=True)
class Completeness:
    """A bundle's rule for what a trusted score needs, and the categories it knows."""

    layout: FeatureLayout
    known: tuple[frozenset[str], ...]  # per categorical column: values with a weight of their own
    required: tuple[RequiredInputs, ...] = ()

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], layout: FeatureLayout) -> Completeness:
        allowed = {
            str(entry["name"]): frozenset(str(value) for value in entry.get("allowed_values") or ())
            for entry in manifest.get("feature_schema", [])
            if entry.get("type") == "category"
        }
        known = tuple(allowed.get(name, frozenset()) | {MISSING_CATEGORY} for name in layout.categorical)
        trust = manifest.get(TRUST_KEY)
        required = _required(trust, layout) if isinstance(trust, Mapping) else ()
        return cls(layout=layout, known=known, required=tuple(required))

    def annotate_batch(self, answers: list[dict[str, Any]], batch: RecordBatch) -> list[dict[str, Any]]:
        """Add the fields to a batch's answers (in place; returned for chaining)."""
        n = len(batch)
        if n == 0:
            return answers
        absent = np.zeros((n, len(self.layout.names)), dtype=bool)
        absent[:, self._numeric_positions] = np.isnan(batch.numeric)
        distinct = [set(column) for column in batch.categorical]
        for i, k in self.layout.category_of.items():
            if MISSING_CATEGORY in distinct[k]:
                absent[:, i] = [value == MISSING_CATEGORY for value in batch.categorical[k]]
        patterns, pattern_of = _patterns(absent)
        return self._answers(answers, patterns, pattern_of, batch.categorical, distinct)

    def annotate_rows(self, answers: list[dict[str, Any]], rows: RecordRows) -> list[dict[str, Any]]:
        """`annotate_batch` for a few records as plain Python values."""
        numeric_positions = self._numeric_positions
        category_positions = self._category_positions
        patterns: dict[tuple[int, ...], int] = {}
        pattern_of = []
        for r, values in enumerate(rows.numeric):
            found = []  # RecordRows hold a missing number as None, never NaN: one scan in C when none is
            if None in values:
                found = [numeric_positions[j] for j, value in enumerate(values) if value is None]
            found += [i for i, k in category_positions if rows.categorical[k][r] == MISSING_CATEGORY]
            pattern_of.append(patterns.setdefault(tuple(sorted(found)), len(patterns)))
        distinct = [set(column) for column in rows.categorical]
        return self._answers(answers, list(patterns), pattern_of, rows.categorical, distinct)

    @cached_property
    def _category_positions(self) -> list[tuple[int, int]]:
        return sorted(self.layout.category_of.items())

    @cached_property
    def _numeric_positions(self) -> list[int]:
        return [i for i in range(len(self.layout.names)) if i not in self.layout.category_of]

    def _answers(
        self,
        answers: list[dict[str, Any]],
        patterns: Sequence[tuple[int, ...]],
        pattern_of: Sequence[int],
        categorical: tuple[list[str], ...],
        distinct: Sequence[set[str]],
    ) -> list[dict[str, Any]]:
        """Each answer's fields from its pattern of missing positions (`patterns[pattern_of[r]]`);
        `distinct` holds each category column's values."""
        decided = [self._decided(positions) for positions in patterns]
        unknown = self._unknown(categorical, distinct, len(answers))
        for answer, k, strange in zip(answers, pattern_of, unknown, strict=True):
            names, reason = decided[k]
            answer["missing"] = names  # shared by the records of a pattern: answers are never mutated
            answer["unknown_categories"] = strange
            if reason is not None:
                answer["tier"] = INSUFFICIENT_TIER
                answer["tier_reason"] = reason
        return answers

    def _unknown(
        self, categorical: tuple[list[str], ...], distinct: Sequence[set[str]], n: int
    ) -> list[dict[str, str]]:
        """Per record, its category values the model has no weight of its own for."""
        nothing: dict[str, str] = {}  # shared by every record without one (answers are never mutated)
        unknown = [nothing] * n
        for k, name in enumerate(self.layout.categorical):
            known = self.known[k]
            if distinct[k] <= known:  # the usual case: no per-record work
                continue
            for r, value in enumerate(categorical[k]):
                if value not in known:
                    unknown[r] = {**unknown[r], name: value}
        return unknown

    def _decided(self, positions: tuple[int, ...]) -> tuple[list[str], str | None]:
        """The missing names and the insufficient_data reason (or None) of a pattern, remembered:
        requests repeat the same few patterns. Bounded: past `_KEPT_PATTERNS` it starts again."""
        known = self._patterns_seen
        found = known.get(positions)
        if found is None:
            if len(known) >= _KEPT_PATTERNS:
                known.clear()
            names = [self.layout.names[i] for i in positions]
            found = known[positions] = (names, self._insufficient(frozenset(positions)))
        return found

    @cached_property
    def _patterns_seen(self) -> dict[tuple[int, ...], tuple[list[str], str | None]]:
        return {}

    def _insufficient(self, absent: frozenset[int]) -> str | None:
        """Why a record with these inputs missing is not trusted, or None when it is."""
        lacking = [inputs for inputs in self.required if inputs.positions <= absent]
        if not lacking:
            return None
        parts = []
        for inputs in lacking:
            cost = (
                ""
                if inputs.auc_drop is None
                else f" (validation AUC fell by {inputs.auc_drop:.2f} without it)"
            )
            parts.append(f"{inputs.what} is missing{cost}")
        return "; ".join(parts) + ": the score is shown but not trusted"


def _patterns(absent: np.ndarray) -> tuple[list[tuple[int, ...]], list[int]]:
    """The distinct rows of `absent` (as tuples of missing positions) and each record's row among
    them. Records share few patterns, so each is worked out once. Rows are compared as 64-bit words
    (np.unique over whole rows sorts a structured type: ~40 times slower for 10,000 records)."""
    n = len(absent)
    if not absent.any():
        return [()], [0] * n
    packed = np.packbits(absent, axis=1)
    packed = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, (-packed.shape[1]) % 8))))
    words = packed.view(np.uint64)
    order = np.lexsort(words.T[::-1])
    ordered = words[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    which = np.empty(n, dtype=np.intp)
    which[order] = np.cumsum(starts) - 1
    patterns = [tuple(np.flatnonzero(absent[r]).tolist()) for r in order[starts].tolist()]
    return patterns, which.tolist()


def _required(trust: Mapping[str, Any], layout: FeatureLayout) -> tuple[RequiredInputs, ...]:
    """The manifest's required families and features, as positions in the layout."""
    position = {name: i for i, name in enumerate(layout.names)}
    cost = {str(row.get("family")): row.get("auc_drop") for row in trust.get("families", [])}
    cost_alone = {str(row.get("feature")): row.get("auc_drop") for row in trust.get("features", [])}
    required = []
    for family, names in (trust.get("required_families") or {}).items():
        positions = frozenset(position[name] for name in names if name in position)
        if positions:
            what = f"every input of the {family!r} family"
            required.append(RequiredInputs(what, positions, _number(cost.get(str(family)))))
    for name in trust.get("required_features") or []:
        if name in position:
            required.append(
                RequiredInputs(repr(name), frozenset({position[name]}), _number(cost_alone.get(name)))
            )
    return tuple(required)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
