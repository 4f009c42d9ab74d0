"""Which pipeline a config file drives: its top-level `task` key picks one (default: inspections).

The CLI calls these functions only, so a new kind of model registers here and needs no CLI change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from training.config import ConfigError, read_document

DEFAULT_TASK = "inspections"


@dataclass(frozen=True)
class Task:
    """Entry points of one pipeline; each takes the config path first."""

    train: Callable[[Path, date | None, Path, str], Path]
    evaluate: Callable[[Path, Path, date, date], dict[str, Any]]
    score: Callable[[Path, Path, Path, Path], Any]  # returns an object with .scored and .problems


def config_task(path: Path) -> str:
    """The `task` named at the top of a config file (default: inspections)."""
    path, document = read_document(path)
    task = document.get("task", DEFAULT_TASK)
    if task not in _registry():
        raise ConfigError(path, "task", f"unknown task {task!r}; use one of {sorted(_registry())}")
    return str(task)


def task_for(path: Path) -> Task:
    return _registry()[config_task(path)]


def train_inspections(
    config_path: Path, until: date | None, out: Path, command: str, recorded: Any = None
) -> Path:
    """Train an inspection model; `recorded` (a frame of outcomes posted to the service) joins the data."""
    import pandas as pd

    from training.inspections.config import load_city_config
    from training.inspections.ingest import load_city, with_recorded_outcomes
    from training.inspections.train import train_city
    from training.progress import stderr_progress

    config = load_city_config(config_path)
    stderr_progress(f"loading {config.display_name} data named in {config.path.name}")
    data = load_city(config)
    if recorded is not None and len(recorded):
        before = len(data.inspections)
        data = with_recorded_outcomes(data, recorded)
        note = f"{len(data.inspections) - before} recorded outcomes added from the service's database"
        data = dataclasses.replace(data, notes=(*data.notes, note))
    return train_city(data, None if until is None else pd.Timestamp(until), out, command)


def _registry() -> dict[str, Task]:
    from training.inspections.scoring import evaluate_bundle, score_file
    from training.lead.score import evaluate_lead, score_lead
    from training.lead.train import train_lead

    return {
        "inspections": Task(train=train_inspections, evaluate=evaluate_bundle, score=score_file),
        "lead": Task(train=train_lead, evaluate=evaluate_lead, score=score_lead),
    }
