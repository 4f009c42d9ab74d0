"""One model set for every worker: a reload bumps the generation in the database, and every app
sharing that database follows it (app/platform/generation.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from app_helpers import ADMIN, BUNDLE, copy_bundle, make_settings
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.settings import Settings
from app.platform.storage.repository import Repository


def _generation(client: TestClient) -> int | None:
    answer = client.get("/v1/models")
    assert answer.status_code == 200
    generation: int | None = answer.json()["generation"]
    return generation


def _wait_for(client: TestClient, generation: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while _generation(client) != generation:
        assert time.monotonic() < deadline, f"still at {_generation(client)}, not {generation}"
        time.sleep(0.05)


def _shared_models(tmp_path: Path) -> tuple[Path, Settings]:
    """A models directory with the committed bundle, and settings for apps that share it and a
    database, polling the generation every 0.1 s."""
    models = tmp_path / "models"
    copy_bundle(models)
    settings = make_settings(
        models_dir=models,
        database_url=f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        shared_state=True,
        model_set_poll_seconds=0.1,
    )
    return models, settings


def test_a_reload_reaches_every_app_sharing_the_database(tmp_path: Path) -> None:
    models, settings = _shared_models(tmp_path)
    # Two apps standing for two workers (or replicas): the same database and models directory.
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        assert _generation(first) == _generation(second) == 0
        copy_bundle(models, version="2099-01-01-feedbeef", created_at="2099-01-01T00:00:00+00:00")
        reloaded = first.post("/v1/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["generation"] == 1
        assert reloaded.json()["models_loaded"] == 2
        _wait_for(second, 1)  # the other app reloaded on its own
        versions = second.get("/v1/models").json()["models"][0]["versions"]
        assert "2099-01-01-feedbeef" in versions
        # An operator's reload from the command line's side: the database alone.
        assert Repository.open(settings.database_url).bump_model_generation() == 2
        _wait_for(first, 2)
        _wait_for(second, 2)


def test_without_its_database_a_worker_keeps_serving_what_it_has(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the database's folder should be")
    settings = make_settings(
        database_url=f"sqlite:///{blocked / 'civicrisk.sqlite3'}",
        shared_state=True,
        model_set_poll_seconds=0.1,
    )
    with TestClient(create_app(settings)) as client:
        assert _generation(client) is None
        assert client.get("/health/ready").status_code == 200
        reloaded = client.post("/v1/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200
        assert reloaded.json()["generation"] is None and reloaded.json()["models_loaded"] >= 1


def test_without_shared_state_a_process_reloads_only_itself(tmp_path: Path) -> None:
    """The default: no database use for the model set, and no generation to report."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'unused' / 'civicrisk.sqlite3'}")
    with TestClient(create_app(settings)) as client:
        assert _generation(client) is None
        reloaded = client.post("/v1/admin/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["generation"] is None
    assert not (tmp_path / "unused").exists()  # the database was never opened


def test_a_tampered_generation_is_refused_by_every_app_for_the_same_reason(tmp_path: Path) -> None:
    models, settings = _shared_models(tmp_path)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        bad = copy_bundle(models, version="2099-01-01-feedbeef", created_at="2099-01-01T00:00:00+00:00")
        with (bad / "model.joblib").open("ab") as handle:
            handle.write(b"tampered")
        assert first.post("/v1/admin/reload", headers=ADMIN).status_code == 409
        deadline = time.monotonic() + 5
        while second.get("/health/ready").json()["model_set"]["state"] != "last_good":
            assert time.monotonic() < deadline, "the second app never tried the new generation"
            time.sleep(0.05)
        states = [app.get("/health/ready").json()["model_set"] for app in (first, second)]
        for state in states:  # both still serve generation 0, and say generation 1 was refused
            assert state["generation"] == 0 and state["refused"]["generation"] == 1
            assert state["refused"]["failures"][0]["error"] == "BundleIntegrityError"
        assert states[0]["refused"]["failures"] == states[1]["refused"]["failures"]
        for app in (first, second):
            assert app.get("/v1/models").json()["models"][0]["versions"] == [BUNDLE.name]
        # Fixed on disk, reloaded again: every app serves the new set and the refusal is cleared.
        shutil.rmtree(bad)
        copy_bundle(models, version="2099-01-01-feedbeef", created_at="2099-01-01T00:00:00+00:00")
        assert first.post("/v1/admin/reload", headers=ADMIN).json()["generation"] == 2
        _wait_for(second, 2)
        assert second.get("/health/ready").json()["model_set"] == {
            "state": "current",
            "generation": 2,
            "refused": None,
        }
