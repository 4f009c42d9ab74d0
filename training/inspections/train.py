"""Train: examples → rolling-origin validation of the grid → select → refit → bundle."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.bundle import content_hash, current_versions, write_bundle
from training.evaluate import evaluate_scores, permutation_importance_auc, simulate_reordering
from training.inspections.card import render_model_card, render_plots
from training.inspections.config import CityConfig
from training.inspections.coverage import empty_families, label_feature_words
from training.inspections.decay import decay_curve
from training.inspections.fairness import group_metrics
from training.inspections.features import CATEGORICAL_FEATURES, build_features, describe_feature
from training.inspections.ingest import CityData, data_files
from training.inspections.models import MIN_CATEGORY_COUNT, model_grid
from training.inspections.trust import TRUST_KEY, assess_missing_features
from training.progress import Progress, stderr_progress
from training.selection import Candidate, tier_cut_points
from training.split import Origin, rolling_origins, split_masks

SELECTION_METRIC = "auc"


@dataclass(frozen=True)
class Examples:
    """In-scope inspections with outcomes, their point-in-time features and labels."""

    rows: pd.DataFrame
    features: pd.DataFrame
    labels: np.ndarray


def in_scope(inspections: pd.DataFrame, config: CityConfig) -> pd.Series:
    if not config.inspection_types:  # no types named: every inspection is in scope
        return inspections["has_outcome"]
    return inspections["inspection_type"].isin(config.inspection_types) & inspections["has_outcome"]


def build_examples(
    data: CityData, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> Examples:
    """Examples dated in [start, end] (either open); features see the full history before each date."""
    rows = data.inspections[in_scope(data.inspections, data.config)]
    if start is not None:
        rows = rows[rows["date"] >= start]
    if end is not None:
        rows = rows[rows["date"] <= end]
    rows = rows.reset_index(drop=True)
    return Examples(rows, build_features(rows, data), rows["label"].to_numpy(dtype="int64"))


def score_frame(rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "inspection_id": rows["inspection_id"].to_numpy(),
            "date": rows["date"].to_numpy(),
            "label": labels,
            "score": scores,
        }
    )


def _fit_predict(candidate: Candidate, train: Examples, valid: Examples) -> tuple[Any, np.ndarray]:
    model = candidate.fresh().fit(train.features[candidate.features], train.labels)
    return model, model.predict_proba(valid.features[candidate.features])[:, 1]


def _subset(examples: Examples, mask: pd.Series) -> Examples:
    keep = mask.to_numpy()
    return Examples(
        examples.rows[keep].reset_index(drop=True),
        examples.features[keep].reset_index(drop=True),
        examples.labels[keep],
    )


@dataclass
class GridResult:
    candidate: Candidate
    metrics: list[dict[str, Any]]
    predictions: pd.DataFrame  # out-of-origin validation predictions, all origins

    @property
    def mean_metric(self) -> float:
        values = [float(m[SELECTION_METRIC]) for m in self.metrics]
        return float(np.mean(values)) if values else math.nan


def validate_grid(examples: Examples, origins: list[Origin], progress: Progress) -> list[GridResult]:
    """Fit every candidate on each origin's past and score its validation window."""
    grid = model_grid(examples.features, CATEGORICAL_FEATURES)
    results = [GridResult(candidate, [], pd.DataFrame()) for candidate in grid]
    for number, origin in enumerate(origins, start=1):
        train_mask, valid_mask = split_masks(examples.rows["date"], origin)
        train, valid = _subset(examples, train_mask), _subset(examples, valid_mask)
        if len(valid.labels) == 0 or len(set(train.labels)) < 2:
            raise ValueError(f"origin {origin.as_dict()} has no validation rows or a single training class")
        progress(
            f"origin {number}/{len(origins)}: train {len(train.labels)} rows before "
            f"{origin.valid_start.date()}, validate {len(valid.labels)} rows"
        )
        for result in results:
            _, scores = _fit_predict(result.candidate, train, valid)
            frame = score_frame(valid.rows, valid.labels, scores)
            metrics = evaluate_scores(frame, origin.valid_start.date(), origin.valid_end.date())
            result.metrics.append({**origin.as_dict(), **metrics})
            result.predictions = pd.concat(
                [result.predictions, frame.assign(origin=number)], ignore_index=True
            )
    for result in results:
        progress(f"  {result.candidate.name:<24} mean validation {SELECTION_METRIC} {result.mean_metric:.4f}")
    return results


def feature_importance(candidate: Candidate, model: Any, valid: Examples) -> dict[str, float]:
    """Permutation importance of the candidate's `model` (fitted before `valid`) on that held-out window."""
    return permutation_importance_auc(model, valid.features, valid.labels, candidate.features)


def feature_schema(
    features: pd.DataFrame,
    used: list[str],
    severity_names: Mapping[str, str] | None = None,
    label_words: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    schema = []
    for name in used:
        description = (label_words or {}).get(name) or describe_feature(name, severity_names)
        entry: dict[str, Any] = {"name": name, "description": description}
        if name in CATEGORICAL_FEATURES:
            # Mirrors the encoders' min_frequency: rarer values are accepted and pooled as one group.
            counts = features[name].dropna().astype(str).value_counts()
            entry["type"] = "category"
            entry["allowed_values"] = sorted(counts[counts >= MIN_CATEGORY_COUNT].index.tolist())
            entry["other_values"] = "accepted; pooled with the rare values seen in training"
        else:
            entry["type"] = "number"
            entry["nullable"] = True
        schema.append(entry)
    return schema


def _version(until: pd.Timestamp, data_hash: str, config_text: str, candidate: Candidate) -> str:
    digest = hashlib.sha256()
    for part in (data_hash, config_text, candidate.name, json.dumps(candidate.params, sort_keys=True)):
        digest.update(part.encode())
    for module in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(module.read_bytes())
    return f"{until.date().isoformat()}-{digest.hexdigest()[:8]}"


def train_city(
    data: CityData,
    until: pd.Timestamp | None,
    out_dir: Path,
    command: str,
    progress: Progress = stderr_progress,
) -> Path:
    """Validate the grid, refit the best candidate on everything up to `until`, write a bundle."""
    started = time.perf_counter()
    config = data.config
    first, last = data.date_range
    until = pd.Timestamp(until) if until is not None else last
    for note in data.notes:
        progress(f"note: {note}")
    progress(f"building point-in-time features for inspections up to {until.date()}")
    examples = build_examples(data, end=until)
    if len(examples.labels) == 0:
        raise ValueError(f"no in-scope inspections on or before {until.date()}")
    progress(f"{len(examples.labels)} examples, base rate {examples.labels.mean():.3f}")
    if empty := empty_families(examples.features, config):
        raise ValueError("\n".join(empty))
    origins = rolling_origins(until)
    results = validate_grid(examples, origins, progress)
    best = max(results, key=lambda r: r.mean_metric)
    progress(f"selected {best.candidate.name} (highest mean validation {SELECTION_METRIC})")

    last_origin = origins[-1]
    train_mask, valid_mask = split_masks(examples.rows["date"], last_origin)
    held_out = _subset(examples, valid_mask)
    validation_model, _ = _fit_predict(best.candidate, _subset(examples, train_mask), held_out)
    importance = feature_importance(best.candidate, validation_model, held_out)
    progress("decay curve: the last validation window with the data cut earlier and earlier")
    decay = decay_curve(
        validation_model,
        best.candidate.features,
        data,
        held_out.rows,
        held_out.labels,
        last_origin.valid_start,
        last_origin.valid_end,
    )
    progress("measuring how validation AUC falls as each feature family goes missing")
    trust = assess_missing_features(
        best.candidate, _subset(examples, train_mask), _subset(examples, valid_mask), last_origin
    )
    progress(f"refitting {best.candidate.name} on all {len(examples.labels)} examples")
    model = best.candidate.fresh().fit(examples.features[best.candidate.features], examples.labels)

    validation_scores = best.predictions["score"].to_numpy()
    cut_points = tier_cut_points(validation_scores)
    last_window = best.predictions[best.predictions["origin"] == len(origins)]
    plots = render_plots(simulate_reordering(last_window.drop(columns="origin")), importance)
    fairness = group_metrics(best.predictions, examples.rows, cut_points, ("risk_category", "facility_type"))

    data_hash = content_hash(data_files(config))
    config_text = config.path.read_text(encoding="utf-8")
    version = _version(until, data_hash, config_text, best.candidate)
    manifest: dict[str, Any] = {
        "name": config.model_name,
        "version": version,
        "city": config.city,
        "city_display_name": config.display_name,
        "task": "inspection_risk",
        "label": {"name": config.label_name, "description": config.label_description},
        "selected_model": {"name": best.candidate.name, "params": best.candidate.params},
        "selection": f"highest mean {SELECTION_METRIC} over the rolling validation origins",
        "feature_schema": feature_schema(
            examples.features, best.candidate.features, config.severity_names, label_feature_words(config)
        ),
        "feature_importance": importance,
        "inspector_feature": False,
        "city_config": {"file": config.path.name, "text": config_text},
        "data": {
            "start": first.date().isoformat(),
            "end": last.date().isoformat(),
            "trained_until": until.date().isoformat(),
            "content_hash": data_hash,
            "files": [path.name for path in data_files(config)],
            "n_examples": len(examples.labels),
            "notes": list(data.notes),
        },
        "validation": {
            "origins": [origin.as_dict() for origin in origins],
            "metrics": {result.candidate.name: result.metrics for result in results},
            "mean": {result.candidate.name: result.mean_metric for result in results},
            "baselines": [result.candidate.name for result in results if result.candidate.baseline],
        },
        "tiers": {
            "cut_points": cut_points,
            "rule": "high: score >= cut_points.high (top 10% of validation scores); "
            "medium: score >= cut_points.medium (next 20%); low: the rest",
        },
        "fairness": fairness,
        "decay": decay,
        TRUST_KEY: trust,
        "command": command,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    manifest["libraries"] = current_versions()
    manifest["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    card = render_model_card(manifest)
    return write_bundle(out_dir / config.model_name / version, model, manifest, card, plots)
