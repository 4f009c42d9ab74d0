"""Train the lead model: children → birth-cohort validation of the grid → select → refit → audit → bundle."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.audit import group_audit
from training.bundle import content_hash, current_versions, write_bundle
from training.evaluate import permutation_importance_auc
from training.lead.card import lead_plots, render_lead_card
from training.lead.config import LeadConfig
from training.lead.data import LeadData, load_lead_data
from training.lead.features import FEATURE_DESCRIPTIONS, build_features
from training.lead.metrics import calibration_rows, ranking_metrics
from training.lead.models import lead_grid
from training.lead.outcomes import labelled_children
from training.progress import Progress, stderr_progress
from training.selection import TIER_TOP_SHARES, Candidate, tier_cut_points

SELECTION_METRIC = "auc"
# Candidates within this much of the best mean AUC count as tied, and a tie goes to the earlier (simpler)
# candidate of the grid: far below the AUC's standard error on a validation cohort of ~7,000 children
# (about 0.01), and a linear model compiles to the service's exact, fast scorer where a forest does not.
SELECTION_TIE = 0.002
SYNTHETIC_STATEMENT = (
    "The outcomes this model was trained and validated on are SYNTHETIC: children, birth dates, blood "
    "tests and the race/ethnicity attribute were generated (training/lead/cohort.py) from real Chicago "
    "places (addresses, tract housing age, community-area demographics). The generator is calibrated to a "
    "4.5% rate of tests >= 5 ug/dL by age 3 and to the directions in Potash et al. (KDD 2015): older "
    "housing strongest, poverty and renter occupancy next. Its metrics measure how well the pipeline "
    "recovers that documented model; they are not real-world accuracy."
)
AREA_STATEMENT = (
    " The area structure is real: each birth year's area effect is fitted so that the areas' simulated "
    "prevalence follows the real area-level outcome series' relative pattern (see 'Real area outcomes'); "
    "the individuals are still synthetic. The series counts children classed as poisoned under the "
    "agency's threshold of the time, not this label, so it sets relative levels only; the label's base "
    "rate is the configured one."
)


@dataclass(frozen=True)
class Examples:
    children: pd.DataFrame  # child_id, birth_date, as_of, place, audit_group, label
    features: pd.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.children["label"], dtype="int64")

    def subset(self, mask: pd.Series) -> Examples:
        keep = mask.to_numpy()
        return Examples(
            self.children[keep].reset_index(drop=True), self.features[keep].reset_index(drop=True)
        )


@dataclass(frozen=True)
class CohortOrigin:
    """Validate on children born in [start, end]; train on those whose outcome window closed before start."""

    start: pd.Timestamp
    end: pd.Timestamp

    def masks(self, children: pd.DataFrame, horizon_days: int) -> tuple[pd.Series, pd.Series]:
        closed = children["birth_date"] + pd.Timedelta(days=horizon_days) < self.start
        cohort = (children["birth_date"] >= self.start) & (children["birth_date"] <= self.end)
        return closed, cohort

    def as_dict(self) -> dict[str, str]:
        return {"cohort": str(self.start.year), "valid_start": self.start.date().isoformat(),
                "valid_end": self.end.date().isoformat()}  # fmt: skip


def build_examples(data: LeadData, until: pd.Timestamp) -> Examples:
    config = data.config
    children = labelled_children(data.outcomes.tests, config, until)
    features = build_features(
        children, data.outcomes.tests, data.reference, config.threshold, config.block_radius_m
    )
    return Examples(children, features)


def cohort_origins(children: pd.DataFrame, count: int) -> list[CohortOrigin]:
    """The last `count` birth-year cohorts among the examples, oldest first."""
    last = int(children["birth_date"].max().year)
    return [
        CohortOrigin(pd.Timestamp(f"{year}-01-01"), pd.Timestamp(f"{year}-12-31"))
        for year in range(last - count + 1, last + 1)
    ]


@dataclass
class GridResult:
    candidate: Candidate
    metrics: list[dict[str, Any]]
    predictions: list[pd.DataFrame]  # per origin: child_id, label, score

    @property
    def mean_metric(self) -> float:
        return float(np.mean([m[SELECTION_METRIC] for m in self.metrics]))


SELECTION_RULE = (
    f"highest mean {SELECTION_METRIC} over the validation birth cohorts; candidates within {SELECTION_TIE} "
    "of it are tied and the earliest (simplest) of the grid is chosen"
)


def select(results: list[GridResult]) -> GridResult:
    """The earliest non-baseline candidate within SELECTION_TIE of the best mean metric."""
    learners = [result for result in results if not result.candidate.baseline] or results
    top = max(result.mean_metric for result in learners)
    return next(result for result in learners if result.mean_metric >= top - SELECTION_TIE)


def _fit(candidate: Candidate, train: Examples) -> Any:
    return candidate.fresh().fit(train.features[candidate.features], train.labels)


def validate_grid(
    examples: Examples, origins: list[CohortOrigin], horizon: int, progress: Progress
) -> list[GridResult]:
    results = [GridResult(candidate, [], []) for candidate in lead_grid()]
    for number, origin in enumerate(origins, start=1):
        train_mask, valid_mask = origin.masks(examples.children, horizon)
        train, valid = examples.subset(train_mask), examples.subset(valid_mask)
        if len(valid.labels) == 0 or len(set(train.labels)) < 2:
            raise ValueError(f"cohort {origin.start.year}: no validation children or one training class")
        progress(
            f"cohort {number}/{len(origins)} ({origin.start.year} births): train {len(train.labels)} "
            f"children with outcomes complete before {origin.start.date()}, validate {len(valid.labels)}"
        )
        for result in results:
            scores = _fit(result.candidate, train).predict_proba(valid.features[result.candidate.features])[
                :, 1
            ]
            result.metrics.append({**origin.as_dict(), **ranking_metrics(valid.labels, scores)})
            result.predictions.append(
                valid.children[["child_id", "community_area", "audit_group"]].assign(
                    label=valid.labels, score=scores
                )
            )
    for result in results:
        progress(f"  {result.candidate.name:<20} mean validation {SELECTION_METRIC} {result.mean_metric:.4f}")
    return results


def fairness_section(config: LeadConfig, pooled: pd.DataFrame, cohorts: str) -> dict[str, Any]:
    """Aequitas-style audit of the validation cohorts' scores, by audit group and community area."""
    group_name = config.outcome_columns.get("audit_group", "audit_group")
    audits = []
    for attribute, column in ((group_name, "audit_group"), ("community_area", "community_area")):
        if pooled[column].notna().any():
            values = pooled[column].astype("string")
            audits.append(
                group_audit(
                    pooled["score"],
                    pooled["label"],
                    values,
                    attribute,
                    config.audit_top_share,
                    tau=config.audit_tau,
                )
            )
    return {
        "method": "Aequitas definitions, computed in training/audit.py (package aequitas needs pandas < 3)",
        "scores": f"out-of-sample scores of the {cohorts} birth cohorts (each model trained on earlier "
        "cohorts only), pooled",
        "top_share": config.audit_top_share,
        "tau": config.audit_tau,
        "synthetic_groups": config.synthetic is not None,
        "audits": audits,
    }


def _version(until: pd.Timestamp, data_hash: str, config_text: str, candidate: Candidate) -> str:
    digest = hashlib.sha256()
    for part in (data_hash, config_text, candidate.name, repr(sorted(candidate.params.items()))):
        digest.update(part.encode())
    package = Path(__file__).parent
    for module in sorted(
        [*package.glob("*.py"), *(package.parent / n for n in ("geo.py", "address.py", "audit.py"))]
    ):
        digest.update(module.read_bytes())
    return f"{until.date().isoformat()}-{digest.hexdigest()[:8]}"


def _data_section(data: LeadData, examples: Examples, until: pd.Timestamp) -> dict[str, Any]:
    config = data.config
    files = config.reference_files + ([config.outcome_file] if config.outcome_file else [])
    tests = data.outcomes.tests
    section: dict[str, Any] = {
        "start": tests["test_date"].min().date().isoformat(),
        "end": tests["test_date"].max().date().isoformat(),
        "trained_until": until.date().isoformat(),
        "births": [
            examples.children["birth_date"].min().date().isoformat(),
            examples.children["birth_date"].max().date().isoformat(),
        ],  # fmt: skip
        "content_hash": content_hash(files),
        "files": [path.name for path in files],
        "outcome_source": data.outcomes.source,
        "n_tests": len(tests),
        "n_examples": len(examples.labels),
        "base_rate": float(examples.labels.mean()),
        "left_out_rows": data.outcomes.dropped,
    }
    if config.synthetic is not None:
        hashed = pd.util.hash_pandas_object(tests.drop(columns=["tract"]), index=False).to_numpy().tobytes()
        section["synthetic_cohort_sha256"] = hashlib.sha256(hashed).hexdigest()
    return section


@dataclass(frozen=True)
class Fitted:
    """The grid validated on the last birth cohorts, the best candidate refitted on every child."""

    examples: Examples
    origins: list[CohortOrigin]
    results: list[GridResult]
    best: GridResult
    model: Any


def fit_lead(data: LeadData, until: pd.Timestamp, progress: Progress) -> Fitted:
    """Examples with outcomes complete by `until` → validate the grid → refit the best on all of them."""
    config = data.config
    progress(f"building point-in-time features for children with outcomes complete by {until.date()}")
    examples = build_examples(data, until)
    if len(examples.labels) == 0:
        raise ValueError(f"no child's outcome window closed on or before {until.date()}")
    progress(f"{len(examples.labels)} children, base rate {examples.labels.mean():.4f}")
    origins = cohort_origins(examples.children, config.validation_cohorts)
    results = validate_grid(examples, origins, config.horizon_days, progress)
    best = select(results)
    progress(f"selected {best.candidate.name} ({SELECTION_RULE})")
    progress(f"refitting {best.candidate.name} on all {len(examples.labels)} children")
    return Fitted(examples, origins, results, best, _fit(best.candidate, examples))


def _area_outcomes_section(data: LeadData) -> dict[str, Any] | None:
    """The real area series the features read and, for a synthetic cohort, how well it follows it."""
    outcomes = data.reference.area_outcomes
    if outcomes is None:
        return None
    spec = outcomes.spec
    return {
        "file": spec.file.name,
        "area_level": spec.area_level,
        "years": list(spec.years),
        "publication_lag_years": spec.publication_lag_years,
        "imputed": outcomes.series.imputed,
        "cohort_fit": data.outcomes.calibration,
        "backtest": _recorded_backtest(spec.backtest_file),
    }


def _recorded_backtest(path: Path | None) -> dict[str, Any] | None:
    """`civicrisk evaluate-areas --out` results named by the config, for the card (None if absent)."""
    if path is None or not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "command": results.get("command"),
        "model_beats_last_rate_every_year": results.get("model_beats_last_rate_every_year"),
        "rows": results.get("rows", []),
    }


def train_lead(config_path: Path, until: date | None, out_dir: Path, command: str) -> Path:
    """The `civicrisk train` entry point for task = "lead"; returns the bundle directory."""
    started = time.perf_counter()
    progress = stderr_progress
    # With --until, a synthetic cohort follows real area outcomes of the years up to then only.
    data = load_lead_data(config_path, progress, None if until is None else until.year)
    config = data.config
    last_test = data.outcomes.tests["test_date"].max()
    until_ts = pd.Timestamp(until) if until is not None else last_test
    fitted = fit_lead(data, until_ts, progress)
    examples, origins, results, best, model = (
        fitted.examples,
        fitted.origins,
        fitted.results,
        fitted.best,
        fitted.model,
    )
    train_mask, valid_mask = origins[-1].masks(examples.children, config.horizon_days)
    last_train, last_valid = examples.subset(train_mask), examples.subset(valid_mask)
    importance = permutation_importance_auc(
        _fit(best.candidate, last_train), last_valid.features, last_valid.labels, best.candidate.features
    )

    pooled = pd.concat(best.predictions, ignore_index=True)
    cut_points = tier_cut_points(pooled["score"].to_numpy())
    cohorts = (
        f"{origins[0].start.year}-{origins[-1].start.year}"
        if len(origins) > 1
        else str(origins[0].start.year)
    )
    fairness = fairness_section(config, pooled, cohorts)
    data_section = _data_section(data, examples, until_ts)
    data_hash = data_section["content_hash"] + data_section.get("synthetic_cohort_sha256", "")
    version = _version(until_ts, data_hash, config.text, best.candidate)
    manifest: dict[str, Any] = {
        "name": config.model_name,
        "version": version,
        "city": config.city,
        "city_display_name": config.display_name,
        "task": "lead_risk",
        "label": {
            "name": config.label_name,
            "description": config.label_description,
            "threshold_ug_dl": config.threshold,
            "horizon_days": config.horizon_days,
        },  # fmt: skip
        "selected_model": {"name": best.candidate.name, "params": best.candidate.params},
        "selection": SELECTION_RULE,
        "feature_schema": [
            {"name": name, "type": "number", "nullable": True, "description": FEATURE_DESCRIPTIONS[name]}
            for name in best.candidate.features
        ],
        "feature_importance": importance,
        "audit_attribute_is_feature": False,
        "city_config": {"file": config.path.name, "text": config.text},
        "data": data_section,
        "validation": {
            "origins": [origin.as_dict() for origin in origins],
            "metrics": {result.candidate.name: result.metrics for result in results},
            "mean": {result.candidate.name: result.mean_metric for result in results},
            "baselines": [result.candidate.name for result in results if result.candidate.baseline],
            "calibration": calibration_rows(pooled["label"], pooled["score"]),
        },
        "tiers": {
            "cut_points": cut_points,
            "rule": f"high: score >= cut_points.high (top {TIER_TOP_SHARES['high']:.0%} of validation "
            "scores); medium: score >= cut_points.medium (next 20%); low: the rest",
        },
        "fairness": fairness,
        "area_outcomes": _area_outcomes_section(data),
        "synthetic": config.synthetic is not None,
        "synthetic_statement": (
            SYNTHETIC_STATEMENT + (AREA_STATEMENT if data.reference.area_outcomes else "")
            if config.synthetic is not None
            else None
        ),
        "command": command,
        "training_seconds": round(time.perf_counter() - started, 1),
        "libraries": current_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    card = render_lead_card(manifest)
    plots = lead_plots(pooled["label"].to_numpy(), pooled["score"].to_numpy(), importance)
    return write_bundle(out_dir / config.model_name / version, model, manifest, card, plots)
