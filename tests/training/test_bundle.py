"""Writing, verifying and loading model bundles; tampering must be caught before unpickling."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from training.bundle import (
    BundleError,
    BundleIntegrityError,
    BundleVersionError,
    content_hash,
    current_versions,
    find_bundles,
    load_bundle,
    verify_bundle,
    write_bundle,
)

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = np.array([0, 0, 1, 1])
PLOT = b"\x89PNG\r\n\x1a\nnot really an image"


def base_manifest() -> dict[str, Any]:
    return {
        "name": "restaurant_risk",
        "version": "v1",
        "feature_schema": [{"name": "prior_fails", "type": "float", "description": "past fails"}],
    }


@pytest.fixture
def model() -> LogisticRegression:
    return LogisticRegression().fit(X, Y)


@pytest.fixture
def bundle_dir(tmp_path: Path, model: LogisticRegression) -> Path:
    out = tmp_path / "models" / "restaurant_risk" / "v1"
    return write_bundle(out, model, base_manifest(), "# card\n", {"precision_at_k.png": PLOT})


def rewrite_manifest(path: Path, change: dict[str, Any]) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(change)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_round_trip_predicts_like_the_original(bundle_dir: Path, model: LogisticRegression) -> None:
    bundle = load_bundle(bundle_dir)

    np.testing.assert_array_equal(bundle.estimator.predict_proba(X), model.predict_proba(X))
    assert bundle.name == "restaurant_risk"
    assert bundle.version == "v1"
    assert bundle.feature_schema[0]["name"] == "prior_fails"


def test_manifest_lists_hashes_versions_and_creation_time(bundle_dir: Path) -> None:
    text = (bundle_dir / "manifest.json").read_text()
    manifest = json.loads(text)

    assert sorted(manifest["files"]) == ["model.joblib", "model_card.md", "precision_at_k.png"]
    assert manifest["files"]["precision_at_k.png"] == hashlib.sha256(PLOT).hexdigest()
    assert manifest["libraries"] == current_versions()
    assert manifest["format_version"] == 1
    assert manifest["created_at"].endswith("+00:00")
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert verify_bundle(bundle_dir) == manifest


def test_write_keeps_a_given_created_at_and_does_not_mutate_the_input(tmp_path: Path, model: Any) -> None:
    given = {**base_manifest(), "created_at": "2024-05-01T00:00:00+00:00"}

    write_bundle(tmp_path / "b", model, given, "", {})

    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["created_at"] == given["created_at"]
    assert "files" not in given and "libraries" not in given


def test_write_refuses_a_non_empty_directory(bundle_dir: Path, model: Any) -> None:
    with pytest.raises(BundleError, match="not empty"):
        write_bundle(bundle_dir, model, base_manifest(), "", {})
    assert load_bundle(bundle_dir).version == "v1"  # the existing bundle is untouched


def test_write_fills_an_existing_empty_directory_and_leaves_no_staging(tmp_path: Path, model: Any) -> None:
    out = tmp_path / "v2"
    out.mkdir()

    write_bundle(out, model, base_manifest(), "", {})

    assert [p.name for p in tmp_path.iterdir()] == ["v2"]
    verify_bundle(out)


@pytest.mark.parametrize("name", ["../evil.png", "sub/plot.png", "plot.svg", ".hidden.png"])
def test_write_rejects_plot_names_that_are_not_plain_png_files(tmp_path: Path, model: Any, name: str) -> None:
    with pytest.raises(BundleError, match="plain"):
        write_bundle(tmp_path / "v1", model, base_manifest(), "", {name: PLOT})
    assert list(tmp_path.iterdir()) == []


def test_one_changed_byte_is_caught_before_unpickling(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_file = bundle_dir / "model.joblib"
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0x01
    model_file.write_bytes(bytes(content))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("joblib.load called on an unverified bundle")

    monkeypatch.setattr(joblib, "load", refuse)
    with pytest.raises(BundleIntegrityError) as caught:
        load_bundle(bundle_dir)
    message = str(caught.value)
    assert message.startswith(f"{bundle_dir / 'model.joblib'}: sha256 mismatch (manifest ")


def test_library_version_mismatch_is_refused(bundle_dir: Path) -> None:
    libraries = {**current_versions(), "scikit-learn": "0.24.2"}
    rewrite_manifest(bundle_dir, {"libraries": libraries})

    with pytest.raises(BundleVersionError, match=r"scikit-learn 0\.24\.2 in bundle"):
        load_bundle(bundle_dir)


def test_python_must_match_major_minor_only(bundle_dir: Path) -> None:
    major, minor, _patch = current_versions()["python"].split(".")
    rewrite_manifest(bundle_dir, {"libraries": {**current_versions(), "python": f"{major}.{minor}.999"}})
    verify_bundle(bundle_dir)

    rewrite_manifest(
        bundle_dir, {"libraries": {**current_versions(), "python": f"{major}.{int(minor) + 1}.0"}}
    )
    with pytest.raises(BundleVersionError, match="python"):
        verify_bundle(bundle_dir)


def test_edited_card_is_caught(bundle_dir: Path) -> None:
    (bundle_dir / "model_card.md").write_text("# a different card\n")

    with pytest.raises(BundleIntegrityError, match="model_card.md: sha256 mismatch"):
        verify_bundle(bundle_dir)


def test_deleted_plot_is_reported_by_name(bundle_dir: Path) -> None:
    (bundle_dir / "precision_at_k.png").unlink()

    with pytest.raises(
        BundleIntegrityError, match=r"precision_at_k\.png: listed in manifest.json but missing"
    ):
        load_bundle(bundle_dir)


def test_unlisted_extra_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "extra.joblib").write_bytes(b"x")

    with pytest.raises(BundleIntegrityError, match=r"extra\.joblib: present but not listed"):
        verify_bundle(bundle_dir)


def test_unreadable_or_missing_manifest_is_an_integrity_error(bundle_dir: Path) -> None:
    (bundle_dir / "manifest.json").write_text("{not json")
    with pytest.raises(BundleIntegrityError, match="manifest.json: unreadable"):
        verify_bundle(bundle_dir)

    (bundle_dir / "manifest.json").unlink()
    with pytest.raises(BundleIntegrityError, match="manifest.json: missing"):
        verify_bundle(bundle_dir)


def test_manifest_cannot_point_outside_the_bundle(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    rewrite_manifest(bundle_dir, {"files": {**manifest["files"], "../secret": "0" * 64}})

    with pytest.raises(BundleIntegrityError, match="invalid name"):
        verify_bundle(bundle_dir)


def test_find_bundles_lists_manifests_up_to_two_levels(tmp_path: Path) -> None:
    for folder in ["b/v1", "a/v2", "a/v1", "flat", "a/v1/too/deep", "a/.v3.tmp-x"]:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "manifest.json").write_text("{}")
    (tmp_path / "a" / "no_manifest").mkdir()

    found = find_bundles(tmp_path)

    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/v1", "a/v2", "b/v1", "flat"]
    assert find_bundles(tmp_path / "missing") == []


def test_content_hash_ignores_argument_order_but_not_content(tmp_path: Path) -> None:
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    first.write_text("ab")
    second.write_text("c")
    original = content_hash([first, second])

    assert content_hash([second, first]) == original
    # Moving a byte across the file boundary keeps the concatenation but must change the hash.
    first.write_text("a")
    second.write_text("bc")
    assert content_hash([first, second]) != original
