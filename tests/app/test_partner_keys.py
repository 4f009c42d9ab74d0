"""Partner keys live in the database (app/platform/keys.py): the `civicrisk keys` commands on SQLite
and PostgreSQL, the service following them, the grace period while the database is unreachable, a
keys file of an earlier release imported once, the bootstrap keys of CIVICRISK_API_KEYS, and a fresh
checkout that creates no database just to look for keys."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from app_helpers import PARTNER, PARTNER_KEY, SCORE_URL, make_settings, write_legacy_keys_file
from fastapi.testclient import TestClient
from keys_import_worker import import_at_once

from app.main import create_app
from app.platform.keys import PartnerKeys, create_key
from app.platform.keys_file import import_keys_file
from app.platform.storage.partner_keys import StoredKey
from app.platform.storage.repository import DatabaseUnavailable, Repository
from civicrisk.cli import main as cli_main

BODY = {"records": [{}]}  # every feature unknown: a valid request for any inspections key


def _score(client: TestClient, key: str) -> Any:
    return client.post(SCORE_URL, json=BODY, headers={"X-API-Key": key})


def _listed(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    assert cli_main(["keys", "list"]) == 0
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_keys_commands_create_list_and_revoke_in_the_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICRISK_DATABASE_URL", database_url)
    assert (
        cli_main(["keys", "create", "--partner", "Food Co-op", "--scope", "inspections", "--scope", "lead"])
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    key = printed[-1]  # shown once, on the last line
    key_id = key.split("_")[1]
    assert key.startswith(f"ck_{key_id}_") and len(key) > 40
    assert f"key id {key_id} for partner Food Co-op (scopes inspections, lead)" in printed[0]

    # Only the digest is stored: no column of any row holds the key or its secret.
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(sa.text("SELECT * FROM partner_keys")).mappings()]
    engine.dispose()
    assert len(rows) == 1 and rows[0]["id"] == key_id and rows[0]["revoked_at"] is None
    assert all(key.split("_", 2)[2] not in str(value) for value in rows[0].values())

    (listed,) = _listed(capsys)
    assert listed[:3] == [key_id, "Food Co-op", "inspections,lead"] and listed[4] == "active"

    # The service sharing the database accepts it, and refuses it once revoked.
    settings = make_settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:
        assert _score(client, key).status_code == 200
        assert cli_main(["keys", "revoke", key_id]) == 0
        assert f"key {key_id} of partner Food Co-op revoked at" in capsys.readouterr().out
        client.app.state.partner_keys.refresh()  # type: ignore[attr-defined]  # every second on its own
        assert _score(client, key).status_code == 401
    (listed,) = _listed(capsys)
    assert listed[4].startswith("revoked 20")

    assert cli_main(["keys", "revoke", "0123456789ab"]) == 2
    assert "no key with id '0123456789ab'" in capsys.readouterr().err


def test_an_unreachable_database_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICRISK_DATABASE_URL", "postgresql+psycopg://postgres:secret@127.0.0.1:9/test")
    assert cli_main(["keys", "create", "--partner", "P", "--scope", "lead"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("civicrisk: error: database unavailable") and "secret" not in line


def test_a_fresh_checkout_creates_no_database_to_look_for_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    var = tmp_path / "var"
    url = f"sqlite:///{var / 'civicrisk.sqlite3'}"
    monkeypatch.setenv("CIVICRISK_DATABASE_URL", url)
    monkeypatch.setenv("CIVICRISK_KEYS_FILE", str(var / "partner-keys.json"))
    assert _listed(capsys) == []
    settings = make_settings(database_url=url, keys_file=var / "partner-keys.json")
    with TestClient(create_app(settings)) as client:
        assert _score(client, PARTNER_KEY).status_code == 200
        assert _score(client, "ck_0123456789ab_not-a-key").status_code == 401
        client.app.state.partner_keys.refresh()  # type: ignore[attr-defined]
        assert client.get("/health/ready").json()["dependencies"] == {"database": "ok"}
    assert not var.exists()
    # The first key written creates it; a running service picks it up.
    with TestClient(create_app(settings)) as client:
        _, key = create_key(Repository.open(url), "First", ["inspections"])
        client.app.state.partner_keys.refresh()  # type: ignore[attr-defined]
        assert _score(client, key).status_code == 200


class Switchable:
    """The repository as the key store uses it, with a switch that makes the database unreachable."""

    def __init__(self, real: Repository) -> None:
        self.real, self.down = real, False

    def _reach(self) -> None:
        if self.down:
            raise DatabaseUnavailable("database unavailable: connection refused (simulated)")

    def partner_keys_stamp(self) -> tuple[int, int]:
        self._reach()
        return self.real.partner_keys_stamp()

    def partner_keys(self, active_only: bool = False) -> list[StoredKey]:
        self._reach()
        return self.real.partner_keys(active_only)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_last_known_keys_serve_for_the_grace_period_then_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    repository = Repository.open(url)
    _, kept = create_key(repository, "Kept", ["inspections"])
    _, revoked = create_key(repository, "Revoked during the outage", ["inspections"])
    database, clock = Switchable(repository), Clock()
    with TestClient(create_app(make_settings(database_url=url, keys_grace_seconds=30))) as client:
        keys: PartnerKeys = client.app.state.partner_keys  # type: ignore[attr-defined]
        # The database as the test controls it, and the test's clock (a background read every
        # second does what the test's own reads do: the state below decides the outcome).
        keys.repository, keys.clock = (lambda: database), clock  # type: ignore[assignment,return-value]
        keys.refresh()
        assert _score(client, kept).status_code == _score(client, revoked).status_code == 200

        with caplog.at_level(logging.WARNING, logger="app.platform.keys"):
            database.down = True
            repository.revoke_partner_key(revoked.split("_")[1])  # made elsewhere, during the outage
            clock.now += 10
            keys.refresh()
            # Inside the grace period: the keys last read, the revoked one included.
            for _ in range(5):
                assert _score(client, kept).status_code == 200
                assert _score(client, revoked).status_code == 200
            ready = client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["dependencies"]["database"].startswith("unreachable: database unavailable")

            clock.now += 21  # 31 s after the last successful read
            keys.refresh()
            for _ in range(5):
                refused = _score(client, kept)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "key_store_unavailable"
                assert "key store" in refused.json()["error"]["message"]
                assert int(refused.headers["retry-after"]) > 0
                assert _score(client, "ck_0123456789ab_unknown").status_code == 503  # never a 401 guess
            lead = client.post("/v1/lead/risk", json={}, headers={"X-API-Key": kept})
            assert lead.status_code == 503 and "retry-after" in lead.headers  # the Lead Safe shape too
            assert _score(client, PARTNER_KEY).status_code == 200  # the bootstrap key needs no database
            assert client.get("/health/ready").status_code == 200  # scoring needs no database

            database.down = False
            keys.refresh()
            assert _score(client, kept).status_code == 200
            assert _score(client, revoked).status_code == 401  # the outage's revocation, now in effect
            assert client.get("/health/ready").json()["dependencies"] == {"database": "ok"}
    messages = [record.getMessage() for record in caplog.records if record.name == "app.platform.keys"]
    # Once per outage, not per read or request.
    assert sum("unreachable" in message for message in messages) == 1, messages
    assert sum("refused (503)" in message for message in messages) == 1, messages


def test_the_bootstrap_key_works_and_is_named_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with _warnings(caplog), TestClient(create_app(make_settings())) as client:
        assert client.post(SCORE_URL, json=BODY, headers=PARTNER).status_code == 200
    (record,) = [record for record in caplog.records if "bootstrap" in record.getMessage()]
    assert (
        record.levelno == logging.WARNING
        and "1 bootstrap key(s) from CIVICRISK_API_KEYS" in record.getMessage()
    )
    named = f"env-key-{hashlib.sha256(PARTNER_KEY.encode()).hexdigest()[:8]}"  # a digest prefix
    assert getattr(record, "keys", None) == [named]
    assert all(PARTNER_KEY not in str(vars(record)) for record in caplog.records)


def _warnings(caplog: pytest.LogCaptureFixture) -> Any:
    return caplog.at_level(logging.WARNING, logger="app.platform.keys")


def _file_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if "partner-keys.json" in record.getMessage()]


def test_a_keys_file_is_imported_once_then_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys_file = tmp_path / "partner-keys.json"
    (active_id, active), (_, revoked) = write_legacy_keys_file(
        keys_file, ("Rush", ["inspections"], None), ("Gone", ["inspections"], "2026-11-02T10:00:00+00:00")
    )
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    settings = make_settings(database_url=url, keys_file=keys_file)
    with _warnings(caplog), TestClient(create_app(settings)) as client:
        assert _score(client, active).status_code == 200
        assert _score(client, revoked).status_code == 401
    (message,) = _file_messages(caplog)
    assert message.startswith(f"imported 2 partner key(s) from {keys_file} into the database")
    assert "ignored from now on" in message
    stored = {key.id: key for key in Repository.open(url).partner_keys()}
    assert stored[active_id].partner == "Rush" and stored[active_id].scopes == ("inspections",)
    assert stored[active_id].created_at.isoformat() == "2026-11-01T09:00:00+00:00"

    # Revoked in the database: the file, still there, must not bring it back on the next start.
    Repository.open(url).revoke_partner_key(active_id)
    caplog.clear()
    with _warnings(caplog), TestClient(create_app(settings)) as client:
        assert _score(client, active).status_code == 401
    (message,) = _file_messages(caplog)
    assert message.startswith(f"{keys_file} is ignored: its keys were imported into the database at")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM partner_keys")).scalar() == 2
        assert connection.execute(sa.text("SELECT count(*) FROM partner_keys_file_imports")).scalar() == 1
    engine.dispose()


def test_a_changed_keys_file_adds_only_its_new_keys(tmp_path: Path) -> None:
    """An earlier release wrote the file again (a rolling upgrade): its new keys are added, and what
    the database says of the keys it already holds stands."""
    keys_file, more = tmp_path / "partner-keys.json", tmp_path / "more.json"
    repository = Repository.open(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    ((first_id, _),) = write_legacy_keys_file(keys_file, ("Rush", ["lead"], None))
    done = import_keys_file(repository, keys_file)
    assert done is not None and done.keys_added == 1
    again = import_keys_file(repository, keys_file)
    assert again is not None and again.keys_added is None  # the same content: nothing done
    repository.revoke_partner_key(first_id)

    ((second_id, _),) = write_legacy_keys_file(more, ("Mercy", ["lead"], None))
    document = json.loads(keys_file.read_text())
    document["keys"] += json.loads(more.read_text())["keys"]
    keys_file.write_text(json.dumps(document))
    changed = import_keys_file(repository, keys_file)
    assert changed is not None and changed.keys_added == 1
    states = {key.id: key.revoked_at is None for key in repository.partner_keys()}
    assert states == {first_id: False, second_id: True}


def test_two_workers_starting_together_import_the_file_once(database_url: str, tmp_path: Path) -> None:
    # Real processes (each its own interpreter, engine and connection), released together by a
    # barrier: one imports (the import's record is written first), the other waits on that write,
    # then finds the record and adds nothing.
    keys_file = tmp_path / "partner-keys.json"
    write_legacy_keys_file(keys_file, *((f"Partner {n}", ["lead"], None) for n in range(20)))
    Repository.open(database_url)  # migrated once up front: the race here is the import's
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results: Any = context.Queue()
    workers = [
        context.Process(target=import_at_once, args=(database_url, str(keys_file), start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert sorted(str(results.get(timeout=5)) for _ in workers) == ["20", "None"]
    assert len(Repository.open(database_url).partner_keys()) == 20
