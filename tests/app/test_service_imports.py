"""The service imports what serving needs, not the training machinery: model fitting and the model
card's plotting (matplotlib and its image and font libraries) cost every worker ~27 MB and ~0.5 s of
start-up (bench/README.md, "Memory")."""

from __future__ import annotations

import json
import subprocess
import sys

from app_helpers import REPO_ROOT

NOT_FOR_SERVING = ("matplotlib", "PIL", "training.inspections.train", "training.card", "training.lead.train")


def test_the_service_does_not_import_the_training_machinery() -> None:
    probe = (
        "import json, sys; import app.main; "
        f"print(json.dumps([name for name in {NOT_FOR_SERVING!r} if name in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == []
