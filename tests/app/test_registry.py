"""The registry serves only bundles that verify, lists the others with the reason, and reloads safely."""

from __future__ import annotations

import gc
import json
import shutil
import threading
from pathlib import Path

import pytest
from app_helpers import (
    ADMIN,
    BUNDLE,
    MODEL_NAME,
    MODELS_DIR,
    PARTNER,
    SCORE_URL,
    copy_bundle,
    make_settings,
)
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
        assert [m["version"] for m in listed["models"]] == [BUNDLE.name]
        [failure] = listed["failures"]
        assert failure["path"].endswith("2015-01-01-bad") and "model.joblib" in failure["reason"]


def test_several_versions_default_to_newest(tmp_path: Path) -> None:
    copy_bundle(tmp_path)
    copy_bundle(tmp_path, version="2014-08-29-newer", created_at="2030-01-01T00:00:00+00:00")
    snapshot = ModelRegistry(tmp_path).reload()
    assert snapshot.count == 2 and snapshot.get(MODEL_NAME).version == "2014-08-29-newer"
    assert snapshot.get(MODEL_NAME, BUNDLE.name).version == BUNDLE.name
    with pytest.raises(ModelNotFound):
        snapshot.get(MODEL_NAME, "nope")


def test_reload_swaps_in_new_and_keeps_serving_through_bad_ones(tmp_path: Path) -> None:
    copy_bundle(tmp_path)
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as client:
        old = client.app.state.registry.snapshot.get(MODEL_NAME)  # type: ignore[attr-defined]
        # A bad new version: the new set is refused (409, naming the bundle); the old set serves.
        tamper(copy_bundle(tmp_path, version="2099-bad", created_at="2099-01-01T00:00:00+00:00"))
        refused = client.post("/v1/admin/reload", headers=ADMIN)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_set_refused"
        [problem] = refused.json()["error"]["details"]
        assert problem["loc"][-1].endswith("2099-bad") and "sha256 mismatch" in problem["message"]
        assert client.get(f"/v1/models/{MODEL_NAME}").json()["version"] == BUNDLE.name
        # The bad version is removed, but the served bundle is edited on disk: refused again, and the
        # verified copy in memory keeps serving.
        shutil.rmtree(tmp_path / MODEL_NAME / "2099-bad")
        tamper(old.bundle.path)
        refused = client.post("/v1/admin/reload", headers=ADMIN)
        assert refused.status_code == 409 and old.bundle.path.name in refused.json()["error"]["message"]
        assert client.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER).status_code == 200
        assert client.app.state.registry.snapshot.get(MODEL_NAME) is old  # type: ignore[attr-defined]
        # The served bundle is put back as it was and a good new version added: both serve.
        shutil.rmtree(old.bundle.path)
        copy_bundle(tmp_path)
        copy_bundle(tmp_path, version="2099-good", created_at="2099-01-01T00:00:00+00:00")
        reloaded = client.post("/v1/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["models_loaded"] == 2
        assert client.get(f"/v1/models/{MODEL_NAME}").json()["version"] == "2099-good"
        assert client.get("/v1/models").json()["refused"] is None


def test_a_new_set_with_one_bad_bundle_is_refused_whole(tmp_path: Path) -> None:
    """Never half a set: a good new version beside a tampered one does not serve either; the last good
    set serves, and `/v1/models` and `/health/ready` say why."""
    copy_bundle(tmp_path)
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as client:
        copy_bundle(tmp_path, version="2099-good", created_at="2099-01-01T00:00:00+00:00")
        bad = copy_bundle(tmp_path, version="2098-bad", created_at="2098-01-01T00:00:00+00:00")
        tamper(bad, "model.joblib")
        assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 409
        listed = client.get("/v1/models").json()
        assert listed["models"][0]["versions"] == [BUNDLE.name]
        [failure] = listed["refused"]["failures"]
        assert failure["path"].endswith("2098-bad") and failure["error"] == "BundleIntegrityError"
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["model_set"]["state"] == "last_good"
        assert "2098-bad" in ready.json()["model_set"]["refused"]["message"]
        scored = client.post(SCORE_URL, json={"records": [{}]}, headers=PARTNER)
        assert scored.status_code == 200 and scored.json()["version"] == BUNDLE.name


def test_a_bundle_refused_at_start_up_does_not_block_later_reloads(tmp_path: Path) -> None:
    """Start-up serves what verifies; a failure already listed then is no reason to refuse a reload."""
    copy_bundle(tmp_path)
    tamper(copy_bundle(tmp_path, version="2098-bad", created_at="2098-01-01T00:00:00+00:00"))
    with TestClient(create_app(make_settings(models_dir=tmp_path))) as client:
        copy_bundle(tmp_path, version="2099-good", created_at="2099-01-01T00:00:00+00:00")
        reloaded = client.post("/v1/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["models_loaded"] == 2
        assert [failure["path"][-8:] for failure in reloaded.json()["failures"]] == ["2098-bad"]


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
