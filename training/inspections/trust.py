"""Which features a bundle's score cannot be trusted without, chosen on a validation window.

The model fitted on the last origin's training rows scores that origin's validation window again
with inputs missing — set exactly as serving sets a missing input (a number NaN, a category
"Unknown") — and the drop in AUC is measured, for each feature family at once and for each feature
alone. Both matter: correlated features partly stand in for each other, and a single missing
feature can also cost more than its whole family (its weight is no longer balanced by its partners').
A record is scored `tier: "insufficient_data"` (app/scoring/completeness.py) when

- every feature of a family whose absence costs at least `AUC_DROP_LIMIT` is missing, or
- a feature whose own absence costs that much is missing, unless that feature is often empty in the
  data itself (a first inspection has no "days since the last one"): such a feature cannot be
  demanded, and only its family's rule applies.

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
AUC_DROP_LIMIT = 0.02  # validation AUC lost with the inputs missing that makes a score untrusted
OFTEN_EMPTY = 0.05  # a feature empty in more than this share of validation rows is never required alone
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
        empty = _empty_share(frame[name], name)
        drop = base - auc
        feature_rows.append(
            {
                "feature": name,
                "family": family_of(name),
                "auc_drop": drop,
                "empty_share": empty,
                "required": bool(drop >= AUC_DROP_LIMIT and empty <= OFTEN_EMPTY),
            }
        )
    feature_rows.sort(key=lambda row: -row["auc_drop"])
    return {
        "method": "AUC on the last validation window with a family's (or a feature's) inputs missing, "
        "set as serving sets them (number NaN, category 'Unknown'), by the model fitted on that "
        "origin's training rows",
        "window": origin.as_dict(),
        "n_validation": len(valid.labels),
        "auc": base,
        "auc_drop_limit": AUC_DROP_LIMIT,
        "often_empty_share": OFTEN_EMPTY,
        "rule": "A record is scored tier 'insufficient_data' (the score is still given) when every "
        "feature of a required family is missing, or a required feature is",
        "families": family_rows,
        "features": feature_rows,
        "required_families": {row["family"]: row["features"] for row in family_rows if row["required"]},
        "required_features": [row["feature"] for row in feature_rows if row["required"]],
    }


def _empty_share(values: pd.Series, name: str) -> float:
    """Share of rows where the feature is empty in the data itself (as serving would see it missing)."""
    if name in CATEGORICAL_FEATURES:
        return float((values.isna() | (values.astype("string") == MISSING_CATEGORY)).mean())
    return float(values.isna().mean())


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
    alone = trust.get("required_features") or []
    body = [
        f"Validation window {window.get('valid_start')} to {window.get('valid_end')} "
        f"({format_value(trust.get('n_validation'))} inspections), AUC {format_value(trust.get('auc'))} "
        "with every input. Each family's inputs set missing as serving sets them:",
        "",
        *markdown_table(rows),
        "",
        "Single features whose absence costs the most AUC (a feature empty in more than "
        f"{format_value(trust.get('often_empty_share'))} of the rows is never required alone):",
        "",
        *markdown_table(
            [
                {
                    "feature": row.get("feature"),
                    "family": row.get("family"),
                    "AUC drop": row.get("auc_drop"),
                    "empty share": row.get("empty_share"),
                    "required": row.get("required"),
                }
                for row in list(trust.get("features", []))[:8]
            ]
        ),
        "",
        f"Required (absence costs at least {format_value(trust.get('auc_drop_limit'))} AUC): families "
        f"{', '.join(required) if required else 'none'}; features {', '.join(alone) if alone else 'none'}. "
        f"{trust.get('rule', '')}.",
    ]
    return markdown_section("Missing inputs", body)
