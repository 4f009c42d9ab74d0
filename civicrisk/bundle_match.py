"""Refuse a bundle trained for another city or task than the config it is used with.

`civicrisk score` and `civicrisk evaluate` read a config and a bundle; a Boston bundle would otherwise
rank Chicago's rows without a word, and a lead bundle would fail deep inside feature building. Only
the two documents are read here (the bundle's manifest is verified later, when it is loaded).
"""

from __future__ import annotations

import json
from pathlib import Path

from civicrisk.errors import UsageError
from training.config import read_document
from training.tasks import DEFAULT_TASK

# A config's `task` → the `task` its bundles' manifests declare.
MANIFEST_TASKS = {"inspections": "inspection_risk", "lead": "lead_risk"}


def check_bundle_matches(config_path: Path, bundle_path: Path) -> None:
    """UsageError (one line naming both) unless the bundle's city and task are the config's."""
    config_file, document = read_document(config_path)
    city_table = document.get("city")
    config_city = str(city_table.get("name", "")) if isinstance(city_table, dict) else ""
    config_task = str(document.get("task", DEFAULT_TASK))
    expected_task = MANIFEST_TASKS.get(config_task, config_task)
    manifest = _manifest(bundle_path)
    bundle_city = str(manifest.get("city", ""))
    bundle_task = str(manifest.get("task", MANIFEST_TASKS[DEFAULT_TASK]))
    if (bundle_city, bundle_task) != (config_city, expected_task):
        raise UsageError(
            f"bundle {bundle_path} was trained for city {bundle_city!r}, task {bundle_task!r}; "
            f"config {config_file.name} is for city {config_city!r}, task {expected_task!r}"
        )


def _manifest(bundle_path: Path) -> dict[str, object]:
    path = Path(bundle_path) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{bundle_path} is not a bundle: no manifest.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path} cannot be read: {error}") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{path} is not a JSON object")
    return manifest
