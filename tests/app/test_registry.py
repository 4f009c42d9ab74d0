"""The registry serves only bundles that verify, lists the others with the reason, and reloads safely."""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

import pytest
from app_helpers import ADMIN, MODEL_NAME, MODELS_DIR, PARTNER, SCORE_URL, copy_bundle, make_settings
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.errors import ModelNotFound
from app.platform.registry import ModelRegistry


def tamper(bundle: Path, name: str = "model_card.md") -> None:
    with (bundle / name).open("ab") as handle:
        handle.write(b"\nedited after validation\n")


def test_tampered_bundle_is_refused_with_reason(tmp_path: Path) -> None:
    tamper(copy_bundle(tmp_path))
    snapshot = ModelRegistry(tmp_path).reload()
    assert snapshot.count == 0
    [failure] = snapshot.failures
    assert failure.error == "BundleIntegrityError" and "sha256 mismatch" in failure.reason
    assert "model_card.md" in failure.reason and not failure.still_serving


def test_version_mismatch_is_refused_before_unpickling(tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["libraries"]["scikit-learn"] = "0.0.1"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    # A model.joblib that is not a pickle at all would fail if unpickled; the version check comes first.
    snapshot = ModelRegistry(tmp_path).reload()
    [failure] = snapshot.failures
    assert failure.error == "BundleVersionError" and "scikit-learn 0.0.1 in bundle" in failure.reason


def test_failures_show_in_models_list(tmp_path: Path) -> None:
    copy_bundle(tmp_path)
    tamper(copy_bundle(tmp_path, version="2015-01-01-bad"), "model.joblib")
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as client:
        listed = client.get("/v1/models").json()
        assert [m["version"] for m in listed["models"]] == ["2014-08-29-6e338ca4"]
        [failure] = listed["failures"]
        assert failure["path"].endswith("2015-01-01-bad") and "model.joblib" in failure["reason"]


def test_several_versions_default_to_newest(tmp_path: Path) -> None:
    copy_bundle(tmp_path)
    copy_bundle(tmp_path, version="2014-08-29-newer", created_at="2030-01-01T00:00:00+00:00")
    snapshot = ModelRegistry(tmp_path).reload()
    assert snapshot.count == 2 and snapshot.get(MODEL_NAME).version == "2014-08-29-newer"
    assert snapshot.get(MODEL_NAME, "2014-08-29-6e338ca4").version == "2014-08-29-6e338ca4"
    with pytest.raises(ModelNotFound):
        snapshot.get(MODEL_NAME, "nope")


def test_reload_swaps_in_new_and_keeps_serving_through_bad_ones(tmp_path: Path) -> None:
    copy_bundle(tmp_path)
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as client:
        old = client.app.state.registry.snapshot.get(MODEL_NAME)  # type: ignore[attr-defined]
        # A bad new version is refused; the old one stays the default.
        tamper(copy_bundle(tmp_path, version="2099-bad", created_at="2099-01-01T00:00:00+00:00"))
        reloaded = client.post("/v1/admin/reload", headers=ADMIN).json()
        assert reloaded["models_loaded"] == 1 and len(reloaded["failures"]) == 1
        assert client.get(f"/v1/models/{MODEL_NAME}").json()["version"] == "2014-08-29-6e338ca4"
        # The served bundle is edited on disk: the verified copy in memory keeps serving, flagged.
        tamper(old.bundle.path)
        reloaded = client.post("/v1/admin/reload", headers=ADMIN).json()
        assert reloaded["models_loaded"] == 1
        assert any(f["still_serving"] for f in reloaded["failures"])
        assert client.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER).status_code == 200
        assert client.app.state.registry.snapshot.get(MODEL_NAME) is old  # type: ignore[attr-defined]
        # A good new version becomes the default after reload.
        copy_bundle(tmp_path, version="2099-good", created_at="2099-01-01T00:00:00+00:00")
        client.post("/v1/admin/reload", headers=ADMIN)
        assert client.get(f"/v1/models/{MODEL_NAME}").json()["version"] == "2099-good"


@pytest.mark.parametrize(
    "manifest", sorted(MODELS_DIR.glob("*/*/manifest.json")), ids=lambda p: p.parent.parent.name
)
def test_committed_manifests_are_strict_json(manifest: Path) -> None:
    """NaN or Infinity in a manifest is not JSON: JavaScript's JSON.parse and many other readers refuse it."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{manifest}: {constant} is not JSON (write null)")

    json.loads(manifest.read_text(encoding="utf-8"), parse_constant=refuse)


def test_a_reload_in_the_server_freezes_its_new_models_too(tmp_path: Path) -> None:
    """The server keeps what it loaded out of the collector's sight (app.platform.heap.settle_heap); a
    reload's
    new models join them, so full collections stay cheap after a reload as after start-up."""
    copy_bundle(tmp_path)
    try:
        with TestClient(create_app(make_settings(models_dir=tmp_path), freeze_heap=True)) as client:
            for thread in threading.enumerate():  # start-up's own freeze (after the lead warm-up) done
                if thread.name == "lead-warm-up":
                    thread.join()
            copy_bundle(tmp_path, version="2099-good", created_at="2099-01-01T00:00:00+00:00")
            frozen = gc.get_freeze_count()
            assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200
            new = client.app.state.registry.snapshot.get(MODEL_NAME)  # type: ignore[attr-defined]
            assert new.version == "2099-good" and gc.is_tracked(new)
            assert gc.get_freeze_count() > frozen
            assert not any(found is new for found in gc.get_objects())  # frozen: no generation holds it
    finally:
        gc.unfreeze()  # freezing is process-wide: let the rest of the test run collect as usual
