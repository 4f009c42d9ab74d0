"""The tests never read or write the user's state: the checkout's var/ (partner keys made with
`civicrisk keys create`, the service's database) and the shell's CIVICRISK_* variables.

tests/conftest.py gives every test its own state directory and fails the run if the checkout's var/
changed. The last test here proves it: it runs a few representative tests in a copy of the checkout
whose var/ holds a partner key (which turns "no keys configured" into "wrong key"), with CIVICRISK_*
variables a user might have exported; they must pass, and that var/ must be left as it was.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from app_helpers import REPO_ROOT, make_settings, write_legacy_keys_file
from fastapi.testclient import TestClient
from state_isolation import state_env, var_snapshot

import app.platform.settings
from app.main import create_app
from app.platform.keys import create_key
from app.platform.settings import Settings
from app.platform.storage.repository import Repository

# Variables a user may have exported; each would change what some test sees.
USER_ENV = {
    "CIVICRISK_API_KEYS": "user-exported-key-0123456789",
    "CIVICRISK_INSPECTOR_AUTH": "key",
    "CIVICRISK_MAX_RECORDS": "1",
    "CIVICRISK_LEAD_KNOWN_HOMES": "false",
}
# The tests run in the copy: a read of its var/ keys file fails the first, a database written under
# var/ changes its var/; the probes below cover settings, the CLI in a subprocess and an app's lists.
INNER_TESTS = [
    "tests/app/test_routes.py::test_no_keys_configured_refuses_clearly",
    "tests/app/test_state_isolation.py::test_settings_point_at_the_tests_own_state",
    "tests/app/test_state_isolation.py::test_the_keys_command_keeps_keys_in_the_tests_own_state",
    "tests/app/test_state_isolation.py::test_an_app_with_default_settings_keeps_its_lists_in_the_tests_own_state",
]


def test_settings_point_at_the_tests_own_state(state_dir: Path) -> None:
    # The tests use the app of this checkout, so its var/ is the one to keep away from.
    assert app.platform.settings.REPO_ROOT == REPO_ROOT
    assert {name: value for name, value in os.environ.items() if name.startswith("CIVICRISK_")} == state_env(
        state_dir
    )
    defaults, tests = Settings(), make_settings()
    for settings in (defaults, tests):
        assert settings.keys_file == state_dir / "partner-keys.json"
        assert settings.database_url == f"sqlite:///{state_dir / 'civicrisk.sqlite3'}"
    # Neither the user's variables nor the checkout's var/ reach any setting.
    assert defaults.api_keys == () and defaults.inspector_auth == "open" and defaults.max_records == 10_000
    assert defaults.lead_known_homes is True
    var = str(REPO_ROOT / "var")
    for name, field in Settings.model_fields.items():
        if var in str(field.default):  # a setting with its default under var/ must be isolated
            assert f"CIVICRISK_{name.upper()}" in state_env(state_dir), name
            assert var not in str(getattr(defaults, name)), name


def test_the_keys_command_keeps_keys_in_the_tests_own_state(state_dir: Path) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", "keys", "create", "--partner", "Probe", "--scope", "lead"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert str(state_dir / "civicrisk.sqlite3") in created.stdout
    stored = Repository.open(f"sqlite:///{state_dir / 'civicrisk.sqlite3'}").partner_keys()
    assert [entry.partner for entry in stored] == ["Probe"]


def test_an_app_with_default_settings_keeps_its_lists_in_the_tests_own_state(state_dir: Path) -> None:
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/v1/inspections/chicago/daily", params={"date": "2014-08-30", "limit": 3})
        assert response.status_code == 200, response.text
    with closing(sqlite3.connect(state_dir / "civicrisk.sqlite3")) as database:
        assert database.execute("SELECT count(*) FROM issued_lists").fetchone() == (1,)


def _copy_of_the_checkout(target: Path) -> Path:
    """The code and tests copied (app.platform.settings finds var/ next to the app/ it is imported
    from); the committed models and sample data linked."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app", "training", "civicrisk", "tests"):
        shutil.copytree(REPO_ROOT / name, target / name, ignore=ignore)
    shutil.copy2(REPO_ROOT / "pyproject.toml", target / "pyproject.toml")
    for name in ("models", "data"):
        (target / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
    return target


def test_the_tests_neither_read_nor_write_the_checkouts_var(tmp_path: Path) -> None:
    checkout = _copy_of_the_checkout(tmp_path / "checkout")
    var = checkout / "var"
    var.mkdir()
    # A person's keys: one in the checkout's database, one in a keys file not yet imported.
    planted_database = Repository.open(f"sqlite:///{var / 'civicrisk.sqlite3'}")
    planted, _ = create_key(planted_database, "Planted", ["lead", "inspections", "admin"])
    planted_database.engine.dispose()
    write_legacy_keys_file(var / "partner-keys.json", ("Planted in a file", ["lead", "inspections"], None))
    before = var_snapshot(var)
    env = {name: value for name, value in os.environ.items() if not name.startswith("CIVICRISK_")} | USER_ENV
    imported = subprocess.run(
        [sys.executable, "-c", "import app.platform.settings; print(app.platform.settings.REPO_ROOT)"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert imported.stdout.strip() == str(checkout), imported.stderr  # the copy's app, so the copy's var/

    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}",
         *INNER_TESTS],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = f"stdout:\n{inner.stdout}\nstderr:\n{inner.stderr}"
    assert inner.returncode == 0, report
    assert f"{len(INNER_TESTS)} passed" in inner.stdout, report
    assert var_snapshot(var) == before, report
    planted_database = Repository.open(f"sqlite:///{var / 'civicrisk.sqlite3'}")
    assert [entry.id for entry in planted_database.partner_keys()] == [planted.id]  # nothing imported
