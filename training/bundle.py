"""Versioned, verifiable model bundles: `models/<model_name>/<version>/` with a hashed manifest.

A bundle is checked (file hashes, no missing or unlisted files, library versions) before anything in
it is unpickled, because unpickling runs code and a model only behaves as validated with the exact
library versions it was trained with.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np

LIBRARY_NAMES = ("scikit-learn", "pandas", "numpy", "joblib")
FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
# A detached Ed25519 signature of manifest.json (training/signing.py). It cannot be listed in the
# manifest it signs, so it is the one file besides the manifest that the file check lets through.
SIGNATURE_FILE = "manifest.sig"
CARD_FILE = "model_card.md"
_PLOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png")
_CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle cannot be written, verified or loaded; the message names the path and the problem."""

    def __init__(self, path: Path | str, file: str | None, problem: str) -> None:
        self.path = str(path)
        self.file = file
        self.problem = problem
        where = str(Path(path) / file) if file else str(path)
        super().__init__(f"{where}: {problem}")


class BundleIntegrityError(BundleError):
    """A file's hash does not match, a listed file is missing, an unlisted file is present, or the
    manifest cannot be read."""


class BundleVersionError(BundleError):
    """The bundle was written with library versions other than the ones installed."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle and its unpickled estimator."""

    path: Path
    manifest: dict[str, Any]
    estimator: Any

    @property
    def name(self) -> str:
        """Model name from the manifest, falling back to the `<model_name>` directory."""
        return str(self.manifest.get("name", self.path.parent.name))

    @property
    def version(self) -> str:
        """Model version from the manifest, falling back to the `<version>` directory."""
        return str(self.manifest.get("version", self.path.name))

    @property
    def feature_schema(self) -> list[dict[str, Any]]:
        """The feature schema the estimator expects, in column order."""
        if "feature_schema" not in self.manifest:
            raise BundleIntegrityError(self.path, MANIFEST_FILE, "manifest has no feature_schema")
        return list(self.manifest["feature_schema"])


def current_versions() -> dict[str, str]:
    """Installed versions of the pinned libraries, plus "python" as major.minor.micro."""
    versions = {name: metadata.version(name) for name in LIBRARY_NAMES}
    versions["python"] = platform.python_version()
    return versions


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's contents, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(paths: Iterable[Path]) -> str:
    """sha256 over the contents of `paths`, taken in sorted path order.

    Each file contributes its own sha256, so moving bytes from one file to the next changes the hash.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()


def _json_default(value: object) -> object:
    # Manifests are built from numpy/pandas results; store their plain-Python equivalents.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"manifest value of type {type(value).__name__} is not JSON serialisable")


def _strict_json(value: Any) -> Any:
    """NaN and infinities become null, so the manifest is valid JSON for any reader."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    return value


def _check_plot_names(out_dir: Path, plots: Mapping[str, bytes]) -> None:
    for name, content in plots.items():
        if not _PLOT_NAME.fullmatch(name):
            raise BundleError(out_dir, None, f"plot name {name!r} must be a plain *.png file name")
        if not isinstance(content, bytes | bytearray):
            raise BundleError(out_dir, name, "plot content must be PNG bytes")


def write_bundle(
    out_dir: Path,
    estimator: object,
    manifest: dict[str, Any],
    card_markdown: str,
    plots: Mapping[str, bytes],
) -> Path:
    """Write a bundle into `out_dir` atomically and return `out_dir`.

    Files are written to a temporary sibling directory that is renamed into place, so a reader never
    sees a half-written bundle. The written manifest is `manifest` plus `files` (sha256 of every other
    file), `libraries`, `format_version` and, unless given, `created_at`. Refuses a non-empty `out_dir`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BundleError(out_dir, None, "already exists and is not empty; choose a new version")
    _check_plot_names(out_dir, plots)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        joblib.dump(estimator, staging / MODEL_FILE)
        (staging / CARD_FILE).write_text(card_markdown, encoding="utf-8")
        for name, content in plots.items():
            (staging / name).write_bytes(bytes(content))

        full = dict(manifest)
        full["files"] = {path.name: file_sha256(path) for path in sorted(staging.iterdir())}
        full["libraries"] = current_versions()
        full["format_version"] = FORMAT_VERSION
        full.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
        text = json.dumps(
            _strict_json(full), sort_keys=True, indent=2, default=_json_default, allow_nan=False
        )
        (staging / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")

        # mkdtemp makes the directory 0700; a bundle should be as readable as any other output.
        staging.chmod(0o755)
        # rename(2) replaces an empty directory atomically and fails if it gained content meanwhile.
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST_FILE
    if not path.is_dir():
        raise BundleIntegrityError(path, None, "bundle directory does not exist")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleIntegrityError(path, MANIFEST_FILE, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleIntegrityError(path, MANIFEST_FILE, f"unreadable ({error})") from None
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(path, MANIFEST_FILE, "unreadable (top level is not a JSON object)")
    return manifest


def _check_files(path: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleIntegrityError(path, MANIFEST_FILE, "unreadable ('files' must map file names to sha256)")
    if MODEL_FILE not in files:
        raise BundleIntegrityError(path, MANIFEST_FILE, f"{MODEL_FILE} is not listed in 'files'")
    for name in sorted(files):
        # Only plain names: a manifest must not make us read (or later unpickle) outside the bundle.
        if name in ("", ".", "..", MANIFEST_FILE, SIGNATURE_FILE) or "/" in name or "\\" in name:
            raise BundleIntegrityError(path, MANIFEST_FILE, f"'files' lists an invalid name {name!r}")
    present = {entry.name for entry in path.iterdir()} - {MANIFEST_FILE, SIGNATURE_FILE}
    missing = sorted(set(files) - present)
    if missing:
        raise BundleIntegrityError(path, missing[0], "listed in manifest.json but missing")
    extra = sorted(present - set(files))
    if extra:
        raise BundleIntegrityError(path, extra[0], "present but not listed in manifest.json")
    for name in sorted(files):
        file_path = path / name
        if not file_path.is_file():
            raise BundleIntegrityError(path, name, "listed in manifest.json but is not a regular file")
        _check_hash(path, name, files[name], file_sha256(file_path))


def _check_hash(path: Path, name: str, expected: str, actual: str) -> None:
    if expected.lower() != actual:
        raise BundleIntegrityError(
            path, name, f"sha256 mismatch (manifest {expected[:12]}…, file {actual[:12]}…)"
        )


def _check_versions(path: Path, manifest: dict[str, Any]) -> None:
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleVersionError(
            path,
            MANIFEST_FILE,
            f"format_version {manifest.get('format_version')!r} is not supported (expected {FORMAT_VERSION})",
        )
    recorded = manifest.get("libraries")
    if not isinstance(recorded, dict):
        raise BundleIntegrityError(path, MANIFEST_FILE, "unreadable ('libraries' is missing)")
    installed = current_versions()
    problems = []
    for name in LIBRARY_NAMES:
        if recorded.get(name) != installed[name]:
            problems.append(f"{name} {recorded.get(name)} in bundle, {installed[name]} installed")
    bundle_python = str(recorded.get("python", ""))
    if bundle_python.split(".")[:2] != installed["python"].split(".")[:2]:
        problems.append(f"python {bundle_python or None} in bundle, {installed['python']} installed")
    if problems:
        raise BundleVersionError(path, MANIFEST_FILE, "library version mismatch: " + "; ".join(problems))


def verify_bundle(path: Path) -> dict[str, Any]:
    """Check a bundle without unpickling anything and return its manifest.

    Raises BundleIntegrityError if the manifest is unreadable, a listed file is missing, an unlisted
    file is present or a sha256 differs; BundleVersionError if scikit-learn, pandas, numpy or joblib
    differ from the installed versions or python differs in major.minor.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    _check_files(path, manifest)
    _check_versions(path, manifest)
    return manifest


def load_bundle(path: Path) -> Bundle:
    """Verify a bundle, then unpickle its estimator."""
    path = Path(path)
    manifest = verify_bundle(path)
    # Unpickle the very bytes we hash, so the file cannot be swapped between verifying and loading.
    content = (path / MODEL_FILE).read_bytes()
    _check_hash(path, MODEL_FILE, manifest["files"][MODEL_FILE], hashlib.sha256(content).hexdigest())
    estimator = joblib.load(io.BytesIO(content))
    return Bundle(path=path, manifest=manifest, estimator=estimator)


def find_bundles(models_dir: Path) -> list[Path]:
    """Directories up to two levels below `models_dir` that contain a manifest.json, sorted.

    Hidden directories (including bundles still being written) are skipped.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    found: list[Path] = []
    level = [models_dir]
    for _depth in range(2):
        children = [
            child
            for parent in level
            for child in parent.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        ]
        found.extend(child for child in children if (child / MANIFEST_FILE).is_file())
        level = children
    return sorted(found)
