"""Signed bundles: `civicrisk keys sign` / `civicrisk verify`, and a service that refuses unsigned ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_helpers import MODELS_DIR, make_settings
from fastapi.testclient import TestClient

from app.main import create_app
from civicrisk.cli import main as cli_main
from training.bundle import verify_bundle
from training.signing import generate_signing_key

LEAD = MODELS_DIR / "chicago-lead-risk"
FOOD = MODELS_DIR / "chicago-food-inspections"


def test_sign_and_verify(tmp_path: Path) -> None:
    private, public = generate_signing_key(tmp_path / "keys")
    assert private.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    bundle = shutil.copytree(next(LEAD.iterdir()), tmp_path / "bundle")
    assert cli_main(["verify", str(bundle), "--public-key", str(public)]) == 2  # unsigned
    assert cli_main(["keys", "sign", str(bundle), "--private-key", str(private)]) == 0
    assert cli_main(["verify", str(bundle), "--public-key", str(public)]) == 0
    verify_bundle(bundle)  # manifest.sig is the one unlisted file a bundle may hold
    _, other = generate_signing_key(tmp_path / "other")
    assert cli_main(["verify", str(bundle), "--public-key", str(other)]) == 2  # someone else's key
    manifest = bundle / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"synthetic": true', '"synthetic": false'))
    assert cli_main(["verify", str(bundle), "--public-key", str(public)]) == 2  # edited after signing
    assert cli_main(["keys", "sign", str(bundle), "--private-key", str(public)]) == 2  # not a private key


def test_service_refuses_unsigned_and_wrongly_signed_bundles(tmp_path: Path) -> None:
    private, public = generate_signing_key(tmp_path / "keys")
    other_private, _ = generate_signing_key(tmp_path / "other")
    models = tmp_path / "models"
    signed = shutil.copytree(next(LEAD.iterdir()), models / LEAD.name / "v-signed")
    wrong = shutil.copytree(next(FOOD.iterdir()), models / FOOD.name / "v-wrong")
    unsigned = shutil.copytree(next(FOOD.iterdir()), models / FOOD.name / "v-unsigned")
    assert cli_main(["keys", "sign", str(signed), "--private-key", str(private)]) == 0
    assert cli_main(["keys", "sign", str(wrong), "--private-key", str(other_private)]) == 0
    settings = make_settings(models_dir=models, bundle_public_key=public, require_signed_bundles=True)
    with TestClient(create_app(settings)) as client:
        listing = client.get("/v1/models").json()
    assert [model["name"] for model in listing["models"]] == [LEAD.name]
    failures = {Path(failure["path"]).name: failure for failure in listing["failures"]}
    assert set(failures) == {wrong.name, unsigned.name}
    assert "signature does not match" in failures[wrong.name]["reason"]
    assert "not signed" in failures[unsigned.name]["reason"]
    # Without the requirement no bundle is refused for its signature (the two food copies share a version).
    with TestClient(create_app(make_settings(models_dir=models))) as client:
        listing = client.get("/v1/models").json()
    assert len(listing["models"]) == 2
    assert {failure["error"] for failure in listing["failures"]} == {"DuplicateBundle"}


def test_requiring_signatures_needs_a_key() -> None:
    with pytest.raises(ValueError, match="bundle_public_key"):
        make_settings(require_signed_bundles=True)
