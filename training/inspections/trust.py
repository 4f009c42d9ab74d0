"""Which features a bundle's score cannot be trusted without, chosen on a validation window.

For each feature family (and, for the record, each feature) the model fitted on the last origin's
training rows scores that origin's validation window again with the family's features missing — set
exactly as serving sets a missing input (a number NaN, a category "Unknown") — and the drop in AUC is
measured. A family whose absence costs at least `AUC_DROP_LIMIT` is required: a record in which every
feature of a required family is missing gets `tier: "insufficient_data"` when it is scored
(app/scoring/completeness.py). A family, not each feature, is the unit: a first inspection has no
"days since the last one", and a record that gives the establishment's history in other columns is
still scored as in training.

The result goes into the manifest under `TRUST_KEY`; bundles without it declare nothing required.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from training.card import format_value, markdown_section, markdown_table
from training.inspections.features import CATEGORICAL_FEATURES
from training.inspections.features import registry as families
from training.split import Origin

if TYPE_CHECKING:
    from training.inspections.train import Examples
    from training.selection import Candidate

TRUST_KEY = "trust"
AUC_DROP_LIMIT = 0.02  # validation AUC lost when a family is missing that makes its scores untrusted
MISSING_CATEGORY = "Unknown"  # what the establishment family (and serving) fill a blank category with
OTHER_FAMILY = "other"


def family_of(feature: str) -> str:
    """The registered family whose reason texts own `feature` (OTHER_FAMILY if none does)."""
    for family in families.REGISTRY:
        if family.describe(feature) is not None:
            return family.name
    return OTHER_FAMILY


def group_by_family(features: Sequence[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in features:
        grouped.setdefault(family_of(name), []).append(name)
    return grouped


def _without(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """`frame` with `names` missing, as serving represents a missing input."""
    masked = frame.copy()
    for name in names:
        masked[name] = MISSING_CATEGORY if name in CATEGORICAL_FEATURES else np.nan
    return masked


def _auc(model: Any, frame: pd.DataFrame, labels: np.ndarray) -> float:
    return float(roc_auc_score(labels, model.predict_proba(frame)[:, 1]))


def assess_missing_features(
    candidate: Candidate, train: Examples, valid: Examples, origin: Origin
) -> dict[str, Any]:
    """Fit `candidate` on `train`, then measure on `valid` how AUC falls as each family (and each
    feature) goes missing; the manifest's trust section."""
    if len(set(valid.labels.tolist())) < 2:
        raise ValueError("the trust window has a single class: AUC cannot be measured")
    used = list(candidate.features)
    model = candidate.fresh().fit(train.features[used], train.labels)
    frame = valid.features[used]
    base = _auc(model, frame, valid.labels)
    family_rows: list[dict[str, Any]] = []
    for family, names in group_by_family(used).items():
        auc = _auc(model, _without(frame, names), valid.labels)
        drop = base - auc
        family_rows.append(
            {
                "family": family,
                "features": names,
                "auc_when_missing": auc,
                "auc_drop": drop,
                "required": bool(drop >= AUC_DROP_LIMIT),
            }
        )
    feature_rows: list[dict[str, Any]] = []
    for name in used:
        auc = _auc(model, _without(frame, [name]), valid.labels)
        feature_rows.append({"feature": name, "family": family_of(name), "auc_drop": base - auc})
    feature_rows.sort(key=lambda row: -row["auc_drop"])
    return {
        "method": "AUC on the last validation window with a family's (or a feature's) inputs missing, "
        "set as serving sets them (number NaN, category 'Unknown'), by the model fitted on that "
        "origin's training rows",
        "window": origin.as_dict(),
        "n_validation": len(valid.labels),
        "auc": base,
        "auc_drop_limit": AUC_DROP_LIMIT,
        "rule": "a record in which every feature of a required family is missing is scored "
        "tier 'insufficient_data' (the score is still given)",
        "families": family_rows,
        "features": feature_rows,
        "required_families": {row["family"]: row["features"] for row in family_rows if row["required"]},
    }


def trust_lines(manifest: Mapping[str, Any]) -> list[str]:
    """The model card's section on missing inputs."""
    trust = manifest.get(TRUST_KEY)
    if not isinstance(trust, Mapping):
        return markdown_section(
            "Missing inputs", ["_Not assessed for this bundle: no record is marked insufficient_data._"]
        )
    window = trust.get("window", {})
    rows = [
        {
            "family": row.get("family"),
            "features": len(row.get("features", [])),
            "AUC when missing": row.get("auc_when_missing"),
            "AUC drop": row.get("auc_drop"),
            "required": row.get("required"),
        }
        for row in trust.get("families", [])
    ]
    required = trust.get("required_families") or {}
    body = [
        f"Validation window {window.get('valid_start')} to {window.get('valid_end')} "
        f"({format_value(trust.get('n_validation'))} inspections), AUC {format_value(trust.get('auc'))} "
        "with every input. Each family's inputs set missing as serving sets them:",
        "",
        *markdown_table(rows),
        "",
        f"A family whose absence costs at least {format_value(trust.get('auc_drop_limit'))} AUC is "
        f"required: {', '.join(required) if required else 'none'}. {trust.get('rule', '')}.",
        "",
        "Single features whose absence costs the most AUC:",
        "",
        *markdown_table(
            [
                {"feature": row.get("feature"), "family": row.get("family"), "AUC drop": row.get("auc_drop")}
                for row in list(trust.get("features", []))[:8]
            ]
        ),
    ]
    return markdown_section("Missing inputs", body)
