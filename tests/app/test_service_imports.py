"""The service's boundary with the training pipeline.

`app/` uses `training/` only through `training.serving` and the names in its `__all__`; `training/` never
imports `app/`. And the service imports what serving needs, not the training machinery: model fitting
and the model card's plotting (matplotlib and its image and font libraries) cost every worker ~27 MB
and ~0.5 s of start-up (bench/README.md, "Memory")."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from app_helpers import REPO_ROOT

import training.serving

NOT_FOR_SERVING = (
    "matplotlib",
    "PIL",
    "training.inspections.train",
    "training.inspections.card",
    "training.card",
    "training.lead.train",
    "training.lead.card",
)
BOUNDARY = "training.serving"


def _imports(root: Path) -> Iterator[tuple[str, int, str, tuple[str, ...]]]:
    """(file, line, module, names) for every absolute import in the .py files under `root`."""
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path.name, node.lineno, node.module, tuple(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.name, node.lineno, alias.name, ()


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _past_the_boundary(root: Path) -> list[str]:
    allowed = set(training.serving.__all__)
    return [
        f"{path}:{line}: {module} {list(names)}"
        for path, line, module, names in _imports(root)
        if _is_in(module, "training") and (module != BOUNDARY or not set(names) <= allowed)
    ]


def test_the_service_uses_training_only_through_its_boundary() -> None:
    assert _past_the_boundary(REPO_ROOT / "app") == [], "app/ may import only training.serving's __all__"


def test_the_boundary_check_sees_every_form_of_import(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        "import training.inspections.train\n"
        "from training.bundle import load_bundle\n"
        "from training.serving import load_bundle as loader\n"
        "def later():\n    from training.serving import not_exported\n"
    )
    found = _past_the_boundary(tmp_path)
    assert [entry.split(": ", 1)[1] for entry in found] == [
        "training.inspections.train []",
        "training.bundle ['load_bundle']",
        "training.serving ['not_exported']",
    ]


def test_the_boundary_exports_what_it_names() -> None:
    for name in training.serving.__all__:
        assert hasattr(training.serving, name), name


def test_training_never_imports_the_service() -> None:
    inward = [
        f"{path}:{line}: {module}"
        for path, line, module, _ in _imports(REPO_ROOT / "training")
        if _is_in(module, "app") or _is_in(module, "civicrisk")
    ]
    assert inward == []


def test_the_service_does_not_import_the_training_machinery() -> None:
    probe = (
        "import json, sys; import app.main; "
        f"print(json.dumps([name for name in {NOT_FOR_SERVING!r} if name in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == []
