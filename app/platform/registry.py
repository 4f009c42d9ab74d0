"""The model registry: every verified bundle under the models directory, swapped in atomically.

A reload builds a complete new `Snapshot` off to the side and then replaces one reference. Requests
hold the snapshot (or model) they started with, so they finish on it; none sees a half-built state.
At start-up a bundle that fails verification is not served and its reason is listed; the others
serve. A reload is all or nothing: if any bundle fails that did not fail in the set being served (a
tampered or mismatched new version, or a served bundle whose files were edited), the whole new set is
refused and the last good set keeps serving, unchanged, with the refusal recorded (`refusal`) for
`/v1/models` and `/health/ready`. Every replica verifies the same files, so every replica refuses the
same set for the same reason, and none serves a mix of the old set and the new.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from app.platform.errors import ModelNotFound
from app.scoring.bodies.records import parse_records
from app.scoring.completeness import Completeness
from app.scoring.explain import Tiers, explain
from app.scoring.scorers import Scorer, build_scorer
from app.scoring.types import FeatureLayout, RecordBatch
from training.serving import (
    CARD_FILE,
    MODEL_FILE,
    Bundle,
    BundleError,
    describe_feature,
    find_bundles,
    load_bundle,
)

log = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """Manifests may hold NaN; JSON answers must not, so NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class InvalidBundle(BundleError):
    """A verified bundle whose manifest lacks what serving needs (schema, cut-points)."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified bundle, ready to score."""

    bundle: Bundle
    layout: FeatureLayout
    scorer: Scorer
    tiers: Tiers
    descriptions: tuple[str, ...]
    card_markdown: str
    files: Mapping[str, bytes]  # the bundle's plots, hashed at load
    fingerprint: str  # sha256 over the manifest's file hashes: the same bytes give the same fingerprint
    loaded_at: str
    completeness: Completeness  # missing inputs, unknown categories, insufficient_data

    # Read on every request (answers, metrics labels): worked out once, the bundle never changes.
    @cached_property
    def name(self) -> str:
        return self.bundle.name

    @cached_property
    def version(self) -> str:
        return self.bundle.version

    @cached_property
    def city(self) -> str:
        return str(self.bundle.manifest.get("city", ""))

    @property
    def manifest(self) -> dict[str, Any]:
        return self.bundle.manifest

    def score_batch(self, batch: RecordBatch) -> list[dict[str, Any]]:
        return explain(self.scorer.score(batch), batch, self.layout, self.descriptions, self.tiers)

    def score_records(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """Validate and score JSON records; raises InvalidRequest naming each bad field."""
        return self.score_batch(parse_records(records, self.layout))


def _fingerprint(manifest: dict[str, Any]) -> str:
    files = manifest.get("files", {})
    text = "\n".join(f"{name}:{files[name]}" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_verified(bundle: Bundle, name: str) -> bytes:
    content = (bundle.path / name).read_bytes()
    if hashlib.sha256(content).hexdigest() != bundle.manifest["files"][name].lower():
        raise InvalidBundle(bundle.path, name, "changed while the bundle was being loaded")
    return content


def _tiers(bundle: Bundle) -> Tiers:
    try:
        cuts = bundle.manifest["tiers"]["cut_points"]
        tiers = Tiers(high=float(cuts["high"]), medium=float(cuts["medium"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidBundle(bundle.path, "manifest.json", "no numeric tiers.cut_points high/medium") from None
    if not (math.isfinite(tiers.high) and math.isfinite(tiers.medium) and tiers.medium <= tiers.high):
        raise InvalidBundle(bundle.path, "manifest.json", "tiers.cut_points must satisfy medium <= high")
    return tiers


SignatureCheck = Callable[[Path], dict[str, Any]]


def load_model(path: Path, check_signature: SignatureCheck | None = None) -> LoadedModel:
    """Verify (signature if required, hashes, library versions) and unpickle a bundle, then prepare
    its scorer. The signature check returns the manifest it verified; the manifest loaded next must
    be that one, so a manifest swapped between the two reads is refused."""
    signed = check_signature(path) if check_signature is not None else None
    bundle = load_bundle(path)
    if signed is not None and signed != bundle.manifest:
        raise InvalidBundle(path, "manifest.json", "changed after its signature was checked")
    layout = FeatureLayout.from_schema(bundle.feature_schema)
    if not layout.names:
        raise InvalidBundle(path, "manifest.json", "feature_schema is empty")
    descriptions = tuple(
        str(entry.get("description") or describe_feature(str(entry["name"])))
        for entry in bundle.feature_schema
    )
    plots = {
        name: _read_verified(bundle, name)
        for name in bundle.manifest["files"]
        if name.endswith(".png") and name != MODEL_FILE
    }
    card = _read_verified(bundle, CARD_FILE).decode("utf-8") if CARD_FILE in bundle.manifest["files"] else ""
    return LoadedModel(
        bundle=bundle,
        layout=layout,
        scorer=build_scorer(bundle.estimator, layout, bundle.manifest.get("feature_importance")),
        tiers=_tiers(bundle),
        descriptions=descriptions,
        card_markdown=card,
        files=plots,
        fingerprint=_fingerprint(bundle.manifest),
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        completeness=Completeness.from_manifest(bundle.manifest, layout),
    )


@dataclass(frozen=True)
class Failure:
    """A bundle that is not served (or whose on-disk copy no longer verifies), and why."""

    path: str
    error: str
    reason: str
    still_serving: bool = False


def _version_key(model: LoadedModel) -> tuple[str, str, str]:
    data = model.manifest.get("data", {})
    trained_until = str(data.get("trained_until", "")) if isinstance(data, dict) else ""
    return trained_until, str(model.manifest.get("created_at", "")), model.version


@dataclass(frozen=True)
class Snapshot:
    """Every served model at one moment: name -> version -> model, the default version per name."""

    models: Mapping[str, Mapping[str, LoadedModel]] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    loaded_at: str | None = None

    @cached_property
    def defaults(self) -> dict[str, str]:
        """The newest version of each name: latest training end, then creation time (worked out once:
        a snapshot never changes, a reload makes a new one)."""
        return {
            name: max(versions.values(), key=_version_key).version for name, versions in self.models.items()
        }

    @property
    def count(self) -> int:
        return sum(len(versions) for versions in self.models.values())

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        versions = self.models.get(name)
        if not versions:
            raise ModelNotFound(f"no model named {name!r} is loaded; GET /v1/models lists them")
        if version is None:
            return versions[self.defaults[name]]
        if version not in versions:
            raise ModelNotFound(f"model {name!r} has no loaded version {version!r}")
        return versions[version]

    def for_city(self, city: str) -> list[LoadedModel]:
        return [
            versions[self.defaults[name]]
            for name, versions in sorted(self.models.items())
            if versions[self.defaults[name]].city == city
        ]


@dataclass(frozen=True)
class Refusal:
    """A reload whose new set was not served: when, and the bundles that failed in it."""

    at: str
    failures: tuple[Failure, ...]

    @property
    def message(self) -> str:
        paths = ", ".join(f"{failure.path} ({failure.error})" for failure in self.failures)
        return f"the new model set was refused ({paths}); the last good set keeps serving"


def _failure_key(failure: Failure) -> tuple[str, str, str]:
    return failure.path, failure.error, failure.reason


class ModelRegistry:
    """Holds the current snapshot; `reload` re-reads the models directory and swaps it in."""

    def __init__(self, models_dir: Path, check_signature: SignatureCheck | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.check_signature = check_signature
        self._snapshot = Snapshot()
        self._refusal: Refusal | None = None
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait on it

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (another thread of the parent may have held it)."""
        self._reload_lock = threading.Lock()

    @property
    def refusal(self) -> Refusal | None:
        """The last reload's refusal, or None when the last reload was served (or none happened)."""
        return self._refusal

    def reload(self) -> Snapshot:
        """Verify and load every bundle into a new snapshot, then serve it by one assignment, unless it
        has a failure the served set has not (then the served set stays and `refusal` says why).
        Returns the snapshot served afterwards."""
        with self._reload_lock:
            previous = self._snapshot
            served = {(m.bundle.path.resolve()): m for v in previous.models.values() for m in v.values()}
            models: dict[str, dict[str, LoadedModel]] = {}
            failures: list[Failure] = []
            for path in find_bundles(self.models_dir):
                model, failure = self._load_one(path, served.get(path.resolve()))
                if failure is not None:
                    failures.append(failure)
                if model is None:
                    continue
                if model.version in models.get(model.name, {}):
                    failures.append(Failure(str(path), "DuplicateBundle", "same name and version as another"))
                    continue
                models.setdefault(model.name, {})[model.version] = model
            now = datetime.now(UTC).isoformat(timespec="seconds")
            known = {_failure_key(failure) for failure in previous.failures}
            new_failures = tuple(f for f in failures if _failure_key(f) not in known)
            if previous.count and new_failures:  # a set that serves nothing is no last good set
                self._refusal = Refusal(at=now, failures=new_failures)
                log.error("model set refused", extra={"reason": self._refusal.message})
                return previous
            snapshot = Snapshot(models=models, failures=tuple(failures), loaded_at=now)
            self._snapshot = snapshot  # the atomic swap: one reference assignment
            self._refusal = None
        log.info(
            "models loaded",
            extra={
                "models_loaded": snapshot.count,
                "bundles_failed": len(failures),
                "dir": str(self.models_dir),
            },
        )
        return snapshot

    def _load_one(self, path: Path, current: LoadedModel | None) -> tuple[LoadedModel | None, Failure | None]:
        try:
            model = load_model(path, self.check_signature)
        except Exception as error:  # any failure means "do not serve", never a crash
            kept = current is not None
            log.error(
                "bundle refused",
                extra={
                    "bundle": str(path),
                    "error": type(error).__name__,
                    "reason": str(error),
                    "kept": kept,
                },
            )
            return current, Failure(str(path), type(error).__name__, str(error), still_serving=kept)
        if current is not None and current.fingerprint == model.fingerprint:
            return current, None  # unchanged bytes: keep the object in-flight requests already use
        return model, None
