"""A lead bundle is served only on the reference files it was trained on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_helpers import MODELS_DIR

from app.hospitals import lead_risk
from app.hospitals.lead_risk import LeadService
from app.platform.errors import ModelUnavailable
from app.platform.registry import ModelRegistry

CHICAGO = MODELS_DIR.parent / "data" / "sample" / "chicago"


def test_changed_reference_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(MODELS_DIR)
    registry.reload()
    copy = tmp_path / "chicago"
    shutil.copytree(CHICAGO, copy)
    with (copy / "acs2014_tract_year_built.csv").open("a") as handle:
        handle.write("\n")  # harmless to a CSV reader, but not the file the model was validated on
    monkeypatch.setattr(lead_risk, "_ENGINES", {})  # no engine built from the real folder in this test
    service = LeadService(registry, tmp_path, None)
    with pytest.raises(ModelUnavailable, match="differ from those it was trained on"):
        service.engine(service.model())
