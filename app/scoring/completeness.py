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
from typing import Any

import numpy as np

from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch, RecordRows

TRUST_KEY = "trust"  # the manifest section training/inspections/trust.py writes (its TRUST_KEY)
INSUFFICIENT_TIER = "insufficient_data"


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
        numeric_positions = [
            i for i, name in enumerate(self.layout.names) if i not in self.layout.category_of
        ]
        absent[:, numeric_positions] = np.isnan(batch.numeric)
        for i, k in self.layout.category_of.items():
            absent[:, i] = [value == MISSING_CATEGORY for value in batch.categorical[k]]
        # Records share few patterns of missing inputs: each distinct one is worked out once.
        patterns, which = np.unique(np.packbits(absent, axis=1), axis=0, return_inverse=True)
        width = len(self.layout.names)
        per_pattern = [tuple(np.flatnonzero(np.unpackbits(pattern)[:width]).tolist()) for pattern in patterns]
        missing = [per_pattern[k] for k in np.asarray(which).ravel().tolist()]
        return self._answers(answers, missing, batch.categorical)

    def annotate_rows(self, answers: list[dict[str, Any]], rows: RecordRows) -> list[dict[str, Any]]:
        """`annotate_batch` for a few records as plain Python values."""
        names, numeric_column, category_of = (
            self.layout.names,
            self.layout.numeric_column,
            self.layout.category_of,
        )
        missing = []
        for r, values in enumerate(rows.numeric):
            found = []
            for i in range(len(names)):
                k = category_of.get(i)
                if k is not None:
                    if rows.categorical[k][r] == MISSING_CATEGORY:
                        found.append(i)
                else:
                    value = values[numeric_column[i]]
                    if value is None or value != value:
                        found.append(i)
            missing.append(tuple(found))
        return self._answers(answers, missing, rows.categorical)

    def _answers(
        self,
        answers: list[dict[str, Any]],
        missing: Sequence[tuple[int, ...]],
        categorical: tuple[list[str], ...],
    ) -> list[dict[str, Any]]:
        unknown: list[dict[str, str]] = [{} for _ in answers]
        for k, name in enumerate(self.layout.categorical):
            known = self.known[k]
            for r, value in enumerate(categorical[k]):
                if value not in known:
                    unknown[r][name] = value
        decided: dict[tuple[int, ...], tuple[list[str], str | None]] = {}
        for answer, positions, strange in zip(answers, missing, unknown, strict=True):
            found = decided.get(positions)
            if found is None:
                found = decided[positions] = (
                    [self.layout.names[i] for i in positions],
                    self._insufficient(frozenset(positions)),
                )
            names, reason = found
            answer["missing"] = names
            answer["unknown_categories"] = strange
            if reason is not None:
                answer["tier"] = INSUFFICIENT_TIER
                answer["tier_reason"] = reason
        return answers

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
