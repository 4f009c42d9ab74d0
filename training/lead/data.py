"""A lead config's data: its reference places and its blood-test outcomes (real, or the synthetic cohort).

Kept apart from training/lead/train.py so the service's lead engine, which only reads the data, does
not import the training machinery (model fitting, the model card's plotting).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.lead.config import LeadConfig, load_lead_config
from training.lead.outcomes import Outcomes, load_outcomes, stderr_note
from training.lead.reference import Reference, load_reference
from training.progress import Progress, stderr_progress


@dataclass(frozen=True)
class LeadData:
    config: LeadConfig
    reference: Reference
    outcomes: Outcomes


def load_lead_data(
    config_path: Path, progress: Progress = stderr_progress, known_until: int | None = None
) -> LeadData:
    """The config's reference data and outcomes; a synthetic cohort follows real area outcomes of
    years up to `known_until` only (all years when None)."""
    return lead_data(load_lead_config(config_path), progress, known_until)


def lead_data(
    config: LeadConfig, progress: Progress = stderr_progress, known_until: int | None = None
) -> LeadData:
    """load_lead_data for a config already read (e.g. with another synthetic birth range)."""
    progress(f"loading {config.display_name} reference data named in {config.path.name}")
    reference = load_reference(config)
    if reference.area_outcomes is not None:
        spec, imputed = reference.area_outcomes.spec, reference.area_outcomes.series.imputed
        note = (
            f"; imputed: {', '.join(f'{count} {what}' for what, count in imputed.items())}" if imputed else ""
        )
        progress(f"real area outcomes {spec.file.name}, {spec.years[0]}-{spec.years[1]}{note}")
    progress(
        "reading blood-test records" + (" (generating the synthetic cohort)" if config.synthetic else "")
    )
    outcomes = load_outcomes(config, reference, known_until)
    stderr_note(outcomes)
    return LeadData(config, reference, outcomes)
