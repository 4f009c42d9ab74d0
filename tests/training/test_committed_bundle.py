"""The bundle committed under models/ is what the service starts with: it must verify and load."""

from __future__ import annotations

from pathlib import Path

from training.bundle import find_bundles, load_bundle

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_committed_chicago_bundle_verifies_and_is_small() -> None:
    bundles = [path for path in find_bundles(MODELS) if path.parent.name == "chicago-food-inspections"]
    assert bundles, "a trained Chicago inspection bundle must be committed under models/"
    for path in bundles:
        bundle = load_bundle(path)  # verifies every hash and library version first
        assert bundle.manifest["inspector_feature"] is False
        assert bundle.manifest["data"]["end"] == "2014-08-29"
        assert sum(file.stat().st_size for file in path.iterdir()) < 20 * 1024 * 1024
