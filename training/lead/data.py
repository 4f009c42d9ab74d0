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


def load_lead_data(config_path: Path, progress: Progress = stderr_progress) -> LeadData:
    config = load_lead_config(config_path)
    progress(f"loading {config.display_name} reference data named in {config.path.name}")
    reference = load_reference(config)
    progress(
        "reading blood-test records" + (" (generating the synthetic cohort)" if config.synthetic else "")
    )
    outcomes = load_outcomes(config, reference)
    stderr_note(outcomes)
    return LeadData(config, reference, outcomes)
